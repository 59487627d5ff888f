// Plays a WebTransport session against a node from a real Chromium, the
// way the browser client does, and prints what came back as JSON.
//
// Usage: node webtransport.mjs '<json>' where the JSON holds
//   url       the node's session URL (https://127.0.0.1:PORT/play)
//   certHash  hex SHA-256 of the node's certificate (serverCertificateHashes)
//   control   hex bytes to write on the session's first bidirectional stream
//   inputs    hex datagrams to send, one every 50 ms
//   ms        how long to listen
// The Rust test encodes and decodes the game's frames; this script only
// moves bytes, so it needs no copy of the protocol.
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const server = createServer((_, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>trespasser</title>');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', ...(process.env.CHROMIUM_ARGS ? process.env.CHROMIUM_ARGS.split(' ') : [])],
});
try {
  const page = await browser.newPage();
  // A blank page served over loopback HTTP: a secure context (WebTransport
  // needs one) in the loopback address space, so Chromium's local network
  // access checks let it reach the node's loopback QUIC port.
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const result = await page.evaluate(async (a) => {
    const fromHex = (h) => new Uint8Array((h.match(/../g) || []).map((b) => parseInt(b, 16)));
    const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
    const out = { ready: false, control: '', datagrams: [], closed: null, error: null };
    let transport;
    try {
      transport = new WebTransport(a.url, {
        serverCertificateHashes: [{ algorithm: 'sha-256', value: fromHex(a.certHash) }],
      });
      await transport.ready;
      out.ready = true;
      transport.closed.then(
        (info) => (out.closed = info),
        (e) => (out.closed = { error: String(e) }),
      );
      const stream = await transport.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      await writer.write(fromHex(a.control));
      const control = [];
      const deadline = Date.now() + a.ms;
      const untilDeadline = () => new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())));
      // A session the node closes ends the reads with an error; what
      // arrived before it is kept.
      const drain = async (reader, sink) => {
        try {
          for (;;) {
            const next = await Promise.race([reader.read(), untilDeadline().then(() => ({ done: true }))]);
            if (next.done) return;
            sink(next.value);
          }
        } catch {
          // The session closed: out.closed says how.
        }
      };
      const sendInputs = async () => {
        const w = transport.datagrams.writable.getWriter();
        for (const d of a.inputs) {
          await w.write(fromHex(d));
          await new Promise((r) => setTimeout(r, 50));
        }
        w.releaseLock();
      };
      await Promise.all([
        drain(stream.readable.getReader(), (v) => control.push(...v)),
        drain(transport.datagrams.readable.getReader(), (v) => out.datagrams.push(toHex(v))),
        sendInputs(),
      ]);
      out.control = toHex(control);
      // Let a close from the node (a refusal) land before ours.
      await new Promise((r) => setTimeout(r, 100));
      if (out.closed === null) transport.close({ closeCode: 0, reason: 'test over' });
    } catch (e) {
      out.error = String(e);
    }
    return out;
  }, args);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
  server.close();
}
