// jose (panva) verifying a Palisade access token from the JWKS, as a Node resource server would.
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';
const [api, cid, csecret] = process.argv.slice(2);
const meta = await (await fetch(`${api}/.well-known/oauth-authorization-server`)).json();
const res = await fetch(`${api}/oauth/token`, {
  method: 'POST',
  headers: { authorization: 'Basic ' + Buffer.from(`${cid}:${csecret}`).toString('base64'),
             'content-type': 'application/x-www-form-urlencoded' },
  body: 'grant_type=client_credentials&scope=orders:read',
});
const { access_token } = await res.json();
const header = decodeProtectedHeader(access_token);
const JWKS = createRemoteJWKSet(new URL(meta.jwks_uri));
const aud = JSON.parse(Buffer.from(access_token.split('.')[1], 'base64url')).aud;
const { payload, protectedHeader } = await jwtVerify(access_token, JWKS, {
  issuer: meta.issuer, audience: aud, typ: 'at+jwt', algorithms: ['ES256', 'EdDSA', 'RS256', 'PS256'],
});
console.log('header', JSON.stringify(protectedHeader));
console.log('claims', Object.keys(payload).sort().join(','));
// A tampered payload must fail.
const parts = access_token.split('.');
const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
claims.scope = 'orders:write';
const forged = [parts[0], Buffer.from(JSON.stringify(claims)).toString('base64url'), parts[2]].join('.');
try { await jwtVerify(forged, JWKS, { issuer: meta.issuer }); console.log('FAIL forged token verified'); process.exit(1); }
catch (e) { console.log('OK forged token refused:', e.code); }
