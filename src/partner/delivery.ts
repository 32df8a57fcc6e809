// Runs a callback once a tool's answer has actually been written to the client, not merely computed.
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js'

/** What to do once an answer reached the client (`sent`), or once it is known that it never will (`lost`). */
export type DeliveryHandlers = { sent: () => void; lost?: () => void }

/**
 * `listen` moves the cursor only after its answer left the process: the SDK sends nothing for a
 * cancelled request, so a cursor committed on return could skip messages the model never saw.
 */
export class DeliveryTracker {
  private readonly pending = new Map<RequestId, DeliveryHandlers>()

  /**
   * Calls `sent` after the response to `requestId` was written; calls `lost` instead when the request
   * is (or already was) aborted, or when writing the response failed. Exactly one of them runs, at most once.
   */
  afterSent(requestId: RequestId, signal: AbortSignal, handlers: DeliveryHandlers): void {
    if (signal.aborted) {
      handlers.lost?.()
      return
    }
    this.pending.set(requestId, handlers)
    signal.addEventListener('abort', () => this.settle(requestId)?.lost?.(), { once: true })
  }

  /** Takes the handlers of `requestId` out, so that neither runs twice. */
  private settle(requestId: RequestId): DeliveryHandlers | undefined {
    const handlers = this.pending.get(requestId)
    this.pending.delete(requestId)
    return handlers
  }

  wrap(inner: Transport): Transport {
    const isResponse = (message: JSONRPCMessage): message is JSONRPCMessage & { id: RequestId } =>
      'id' in message && message.id !== undefined && ('result' in message || 'error' in message)
    const wrapped: Transport = {
      start: () => inner.start(),
      close: () => inner.close(),
      send: async (message: JSONRPCMessage, options?: TransportSendOptions) => {
        try {
          await inner.send(message, options)
        } catch (error) {
          // The answer never left: whoever waited for it must not stay waiting (listen's lock) nor commit.
          if (isResponse(message)) this.settle(message.id)?.lost?.()
          throw error
        }
        if (isResponse(message)) this.settle(message.id)?.sent()
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
