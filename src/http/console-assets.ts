// The console's and /docs' assets, all from the repository: the console bundled by Bun in memory at start, Swagger UI from its pinned package.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

export type Asset = { body: Uint8Array | string; type: string }

const CONSOLE_ENTRY = join(import.meta.dir, '..', 'console', 'main.tsx')

const page = (title: string, script: string, style: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${style}">
</head>
<body>
<div id="app"></div>
<script type="module" src="${script}"></script>
</body>
</html>
`

/**
 * Bundles the console once (about 20 ms) and keeps the result: `/`, `/console/app.js` and `/console/app.css`.
 * A bundling failure is a bug of ours, so it is thrown at start instead of serving a broken page.
 */
export async function buildConsole(): Promise<Map<string, Asset>> {
  const result = await Bun.build({
    entrypoints: [CONSOLE_ENTRY],
    target: 'browser',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  if (!result.success) throw new Error(`the console did not bundle: ${result.logs.join('\n')}`)
  const assets = new Map<string, Asset>()
  for (const output of result.outputs) {
    const name = output.kind === 'entry-point' ? 'app.js' : output.path.endsWith('.css') ? 'app.css' : null
    if (name) assets.set(name, { body: new Uint8Array(await output.arrayBuffer()), type: output.type })
  }
  assets.set('index.html', { body: page('Duo console', '/console/app.js', '/console/app.css'), type: 'text/html; charset=utf-8' })
  return assets
}

/** The Swagger UI files /docs needs, read from the installed `swagger-ui-dist` (pinned in package.json). */
export function swaggerAssets(): Map<string, Asset> {
  const dir = dirname(require.resolve('swagger-ui-dist/package.json'))
  const files: Record<string, string> = {
    'swagger-ui.css': 'text/css; charset=utf-8',
    'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  }
  return new Map(Object.entries(files).map(([name, type]) => [name, { body: readFileSync(join(dir, name)), type }]))
}
