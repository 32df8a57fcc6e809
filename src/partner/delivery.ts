// Runs a callback once a tool's answer has actually been written to the client, not merely computed.
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js'

/**
 * `listen` moves the cursor only after its answer left the process: the SDK sends nothing for a
 * cancelled request, so a cursor committed on return could skip messages the model never saw.
 */
export class DeliveryTracker {
  private readonly pending = new Map<RequestId, () => void>()

  /** Calls `fn` after the response to `requestId` was sent; dropped if the request is aborted first. */
  afterSent(requestId: RequestId, signal: AbortSignal, fn: () => void): void {
    this.pending.set(requestId, fn)
    signal.addEventListener('abort', () => this.pending.delete(requestId), { once: true })
  }

  wrap(inner: Transport): Transport {
    const pending = this.pending
    const wrapped: Transport = {
      start: () => inner.start(),
      close: () => inner.close(),
      async send(message: JSONRPCMessage, options?: TransportSendOptions) {
        await inner.send(message, options)
        if ('id' in message && message.id !== undefined && ('result' in message || 'error' in message)) {
          const fn = pending.get(message.id)
          pending.delete(message.id)
          fn?.()
        }
      },
      get sessionId() {
        return inner.sessionId
      },
      setProtocolVersion: (version: string) => inner.setProtocolVersion?.(version),
    }
    inner.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => wrapped.onmessage?.(message, extra)
    inner.onclose = () => wrapped.onclose?.()
    inner.onerror = (error: Error) => wrapped.onerror?.(error)
    return wrapped
  }
}
