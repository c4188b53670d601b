// node http-message-signatures (dhensby) signs RFC 9421 requests to the server: HMAC with
// the credential's secret, and Ed25519 with a key registered by `credentials create --public-key`.
import { createRequire } from 'node:module';
import { createPrivateKey, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
const require = createRequire(import.meta.url);
const { httpbis: { signMessage }, createSigner } = require('http-message-signatures');

const [api, akid, secret, edId, edKeyFile] = process.argv.slice(2);
let fail = 0;
async function send(name, key, method, path, body, fields, expect, mutate) {
  const url = api + path;
  const headers = { host: new URL(url).host };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-digest'] = `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
  }
  let r;
  // Like a well-behaved client, wait out a 429's Retry-After (the server slows an address
  // down after a few failed authentications, and the checks here fail on purpose), then
  // sign afresh.
  for (let attempt = 0; attempt < 3; attempt++) {
    const signed = await signMessage({ key, fields, params: ['keyid', 'alg', 'created'] }, { method, url, headers, body });
    if (mutate) mutate(signed);
    const h = { ...signed.headers }; delete h.host;
    r = await fetch(signed.url, { method, headers: h, body: signed.body });
    if (r.status !== 429) break;
    await new Promise((done) => setTimeout(done, 1000 * Math.min(Number(r.headers.get('retry-after') || 1), 5)));
  }
  const ok = r.status === expect;
  fail += !ok;
  console.log(ok ? 'OK  ' : 'FAIL', name, r.status, `(want ${expect})`, ok ? '' : (await r.text()).slice(0, 200));
}
const hmac = createSigner(Buffer.from(secret), 'hmac-sha256', akid);
const order = JSON.stringify({ items: [{ product_id: 'prod_abc', quantity: 1 }], shipping_address: { street: '1 Main St', city: 'Paris', country: 'FR', postal_code: '75001' } });
await send('hmac list orders', hmac, 'GET', '/api/orders?limit=5', undefined, ['@method', '@authority', '@path', '@query'], 200);
await send('hmac create order', hmac, 'POST', '/api/orders', order, ['@method', '@authority', '@path', 'content-type', 'content-digest'], 201);
await send('hmac without @query', hmac, 'GET', '/api/orders?limit=5', undefined, ['@method', '@authority', '@path'], 401);
await send('hmac body changed', hmac, 'POST', '/api/orders', order, ['@method', '@authority', '@path', 'content-type', 'content-digest'], 401,
  (s) => { s.body = s.body.replace('Paris', 'Parix'); });
if (edId) {
  const ed = createSigner(createPrivateKey(readFileSync(edKeyFile)), 'ed25519', edId);
  await send('ed25519 list orders', ed, 'GET', '/api/orders?limit=5', undefined, ['@method', '@authority', '@path', '@query'], 200);
}
console.log('failures:', fail);
process.exit(fail ? 1 : 0);
