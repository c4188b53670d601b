// The AWS SDK for JavaScript v3's signer (@smithy/signature-v4) and the aws4 package sign
// the same requests as `palisade sign --profile aws4`, at the same time.
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import aws4 from 'aws4';
import { execFileSync } from 'node:child_process';

const [bin] = process.argv.slice(2);
const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const when = new Date('2026-11-28T12:00:00Z');
// [method, host, path (decoded), query object, headers, body, service]; the SDK, like the
// wire, gets the path percent-encoded (its serializers encode it; the signer encodes again).
const cases = [
  ['GET', 'api.example.com', '/api/orders', { limit: '20', cursor: 'abc' }, {}, undefined, 'execute-api'],
  ['GET', 'api.example.com', '/x', { b: '2', a: ['1', '0'], c: '' }, {}, undefined, 'execute-api'],
  ['GET', 'api.example.com', '/x', { q: 'hello world', r: 'a/b', s: '~' }, {}, undefined, 'execute-api'],
  ['GET', 'api.example.com', '/a b/c~d', {}, {}, undefined, 'execute-api'],
  ['POST', 'api.example.com', '/api/orders', {}, { 'content-type': 'application/json', 'x-custom': '  a   b  c ' }, '{"a":1}', 'execute-api'],
  ['PUT', 'bucket.s3.amazonaws.com', '/my key/c.txt', {}, { 'content-type': 'text/plain' }, 'hello', 's3'],
];
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
let fail = 0;
for (const [method, host, path, query, headers, body, service] of cases) {
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service, sha256: Sha256,
                                   uriEscapePath: service !== 's3', applyChecksum: service === 's3' });
  const wirePath = path.split('/').map(enc).join('/');
  const req = { method, protocol: 'https:', hostname: host, path: wirePath, query, headers: { host, ...headers }, body };
  const signed = await signer.sign(req, { signingDate: when });
  const sdk = signed.headers.authorization;
  // The wire URL: the path and query percent-encoded as they would travel.
  const qs = Object.entries(query).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${enc(k)}=${enc(x)}`)).join('&');
  const url = `https://${host}${wirePath}${qs ? '?' + qs : ''}`;
  const args = ['sign', '--access-key-id', creds.accessKeyId, '--secret-stdin', '--profile', 'aws4', '--region', 'us-east-1',
                '--service', service, '--timestamp', '2026-11-28T12:00:00Z', '--json', method, url];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (body !== undefined) args.push('--data', body);
  const ours = JSON.parse(execFileSync(bin, args, { input: creds.secretAccessKey })).Authorization;
  // aws4 (mhart): its own request shape.
  const a4 = aws4.sign({ method, host, path: url.slice(`https://${host}`.length), service, region: 'us-east-1', body,
                         headers: { ...headers, 'X-Amz-Date': '20261128T120000Z' } }, creds);
  // aws4 adds and signs Content-Length itself: sign the same header set with ours.
  const args4 = body === undefined ? args : [...args, '-H', `content-length: ${Buffer.byteLength(body)}`];
  const ours4 = body === undefined ? ours : JSON.parse(execFileSync(bin, args4, { input: creds.secretAccessKey })).Authorization;
  const ok = sdk === ours;
  fail += !ok;
  console.log(ok ? 'OK  ' : 'DIFF', method, url, ok ? '' : `\n   sdk:  ${sdk}\n   ours: ${ours}`);
  fail += a4.headers.Authorization !== ours4;
  console.log(a4.headers.Authorization === ours4 ? '     aws4 package: same' : `     aws4 package: DIFF ${a4.headers.Authorization} vs ${ours4}`);
}
console.log('failures:', fail);
process.exit(fail ? 1 : 0);
