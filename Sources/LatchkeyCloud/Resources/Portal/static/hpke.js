// HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, composed over WebCrypto: the one
// suite Latchkey seals new passwords with, so the page seals exactly as the app does. Checked against RFC 9180's
// appendix A.1.1 in the browser tests, and by the device opening what the page sealed.
const subtle = globalThis.crypto && globalThis.crypto.subtle;
const text = new TextEncoder();

const KEM_ID = 0x0020, KDF_ID = 0x0001, AEAD_ID = 0x0001;
const KEM_SUITE = concat(text.encode("KEM"), i2osp(KEM_ID, 2));
const HPKE_SUITE = concat(text.encode("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_ID, 2));
const NK = 16, NN = 12, NH = 32;

export function available() {
  return Boolean(globalThis.isSecureContext && subtle);
}

function i2osp(value, length) {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--, value >>= 8) out[i] = value & 0xff;
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

async function hmac(key, data) {
  const k = await subtle.importKey("raw", key.length ? key : new Uint8Array(NH), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

// RFC 5869 with SHA-256; every length HPKE asks for here fits one block.
async function extract(salt, ikm) { return hmac(salt, ikm); }
async function expand(prk, info, length) { return (await hmac(prk, concat(info, new Uint8Array([1])))).slice(0, length); }

async function labeledExtract(suite, salt, label, ikm) {
  return extract(salt, concat(text.encode("HPKE-v1"), suite, text.encode(label), ikm));
}

async function labeledExpand(suite, prk, label, info, length) {
  return expand(prk, concat(i2osp(length, 2), text.encode("HPKE-v1"), suite, text.encode(label), info), length);
}

// An ephemeral key given by the caller (the RFC's vectors), else a fresh one.
export async function importEphemeral(privateRaw, publicRaw) {
  const pkcs8 = concat(new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]), privateRaw);
  return { privateKey: await subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, ["deriveBits"]), publicRaw };
}

async function freshEphemeral() {
  const pair = await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  return { privateKey: pair.privateKey, publicRaw: new Uint8Array(await subtle.exportKey("raw", pair.publicKey)) };
}

// Single-shot seal to `recipientRaw` (32-byte X25519 public key): { enc, ct }.
export async function seal(recipientRaw, info, aad, plaintext, ephemeral) {
  const eph = ephemeral || await freshEphemeral();
  const recipient = await subtle.importKey("raw", recipientRaw, { name: "X25519" }, false, []);
  const dh = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: recipient }, eph.privateKey, 256));
  const kemContext = concat(eph.publicRaw, recipientRaw);
  const eaePrk = await labeledExtract(KEM_SUITE, new Uint8Array(), "eae_prk", dh);
  const sharedSecret = await labeledExpand(KEM_SUITE, eaePrk, "shared_secret", kemContext, NH);
  const pskIdHash = await labeledExtract(HPKE_SUITE, new Uint8Array(), "psk_id_hash", new Uint8Array());
  const infoHash = await labeledExtract(HPKE_SUITE, new Uint8Array(), "info_hash", info);
  const context = concat(new Uint8Array([0]), pskIdHash, infoHash);
  const secret = await labeledExtract(HPKE_SUITE, sharedSecret, "secret", new Uint8Array());
  const keyBytes = await labeledExpand(HPKE_SUITE, secret, "key", context, NK);
  const baseNonce = await labeledExpand(HPKE_SUITE, secret, "base_nonce", context, NN);
  const key = await subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, ["encrypt"]);
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: baseNonce, additionalData: aad }, key, plaintext));
  return { enc: eph.publicRaw, ct };
}

export function fromBase64url(value) {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4);
  return Uint8Array.from(atob(base64), c => c.charCodeAt(0));
}

export function toBase64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromHex(hex) { return Uint8Array.from(hex.match(/../g) || [], h => parseInt(h, 16)); }
export function toHex(bytes) { return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join(""); }

// Latchkey's seal of a new device password: `v2.` and base64url(enc ‖ ciphertext), info binding request and serial.
export async function sealPassword(agreementKey, requestId, serial, password) {
  const info = text.encode(`latchkey/password-reset/v2\n${requestId.toLowerCase()}\n${serial}`);
  const { enc, ct } = await seal(fromBase64url(agreementKey), info, new Uint8Array(), text.encode(password));
  return "v2." + toBase64url(concat(enc, ct));
}
