// `npm run demo`: builds, then serves the repository root on http://localhost:8080 so the browser
// demo (examples/browser/) can load the bundled default model by URL. Supports HEAD and single
// byte ranges, which is what the URL checkpoint source uses.
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = normalize(new URL('..', import.meta.url).pathname);
const port = Number(process.env.PORT ?? 8080);
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.json': 'application/json', '.map': 'application/json', '.wasm': 'application/wasm', '.md': 'text/plain; charset=utf-8' };

if (!process.argv.includes('--no-build')) {
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--no-types'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = normalize(join(root, decodeURIComponent(url.pathname)));
  if (!path.startsWith(root) || path.split(sep).includes('node_modules') || !existsSync(path) || !statSync(path).isFile()) {
    res.writeHead(404).end('not found');
    return;
  }
  const size = statSync(path).size;
  const headers = { 'Content-Type': types[extname(path)] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes' };
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    const end = Math.min(size - 1, m[2] === '' ? size - 1 : Number(m[2]));
    if (start >= size || end < start) { res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end(); return; }
    res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
    if (req.method === 'HEAD') res.end(); else createReadStream(path, { start, end }).pipe(res);
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': size });
  if (req.method === 'HEAD') res.end(); else createReadStream(path).pipe(res);
}).listen(port, '127.0.0.1', () => {
  console.log(`demo: http://localhost:${port}/examples/browser/index.html?model=/assets/default-model/`);
});
