// Recomputes every vector in messages.json (written by lotus/tests/vectors.rs) with code no one
// here wrote: iso-filecoin serializes each message from its Lotus JSON and names it by CID;
// @ipld/dag-cbor and multiformats encode each method's params from the vector's values, in the
// field order of builtin-actors v18 (actors/miner/src/types.rs), transcribed here on their own;
// the bitfields are RLE+ as the Filecoin spec defines it; each message's signature must recover
// to its sender, and iso-filecoin's own signature with the vectors' test key must be the same. Prints "ok <name>" per vector and
// exits 1 on the first disagreement.
//
//   npm ci && node check.mjs messages.json

import { readFileSync } from 'node:fs'
import * as dagCbor from '@ipld/dag-cbor'
import { Message } from 'iso-filecoin/message'
import { Signature } from 'iso-filecoin/signature'
import { lotusCid } from 'iso-filecoin/utils'
import { recoverAddress, sign } from 'iso-filecoin/wallet'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const hex = (b) => Buffer.from(b).toString('hex')
const unhex = (s) => Uint8Array.from(Buffer.from(s, 'hex'))
const b64 = (s) => (s ? Uint8Array.from(Buffer.from(s, 'base64')) : new Uint8Array())

// RLE+ (spec: "Bitfield RLE+ encoding"): 2 version bits (0), the first bit's value, then each
// run's length: 1 as the bit 1; 2-15 as bits 0,1 and 4 bits; 16+ as bits 0,0 and a varint.
// Bits go least significant first; a trailing run of zeros is not written.
function rlePlus(bits) {
  const sorted = [...bits].sort((a, b) => a - b)
  if (sorted.length === 0) return new Uint8Array()
  const runs = []
  let pos = 0
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++
    runs.push(sorted[i] - pos, j - i + 1)
    pos = sorted[j] + 1
    i = j + 1
  }
  const out = []
  let cur = 0
  let n = 0
  const put = (v, k) => {
    for (let b = 0; b < k; b++) {
      cur |= ((v >> b) & 1) << n
      if (++n === 8) {
        out.push(cur)
        cur = 0
        n = 0
      }
    }
  }
  put(0, 2)
  const first = runs[0] === 0 ? 1 : 0
  put(first, 1)
  for (const len of first ? runs.slice(1) : runs) {
    if (len === 1) put(1, 1)
    else if (len < 16) {
      put(2, 2)
      put(len, 4)
    } else {
      put(0, 2)
      let v = len
      while (v >= 0x80) {
        put((v & 0x7f) | 0x80, 8)
        v >>>= 7
      }
      put(v, 8)
    }
  }
  if (n > 0) out.push(cur)
  return Uint8Array.from(out)
}

// CommR as a CID: fil-commitment-sealed (0xf102), poseidon-bls12_381-a2-fc1 (0xb401).
const sealedCid = (commR) => CID.create(1, 0xf102, Digest.create(0xb401, unhex(commR)))

const declarations = (v) => [v.declarations.map(([dl, part, s]) => [dl, part, rlePlus(s)])]

// Each method's params, as builtin-actors v18 lays them out.
const params = {
  PreCommitSectorBatch2: (v) => [
    [[v.seal_proof, v.sector_number, sealedCid(v.comm_r), v.seal_rand_epoch, [], v.expiration, null]],
  ],
  ProveCommitSectors3: (v) => [
    v.sectors.map(([n]) => [n, []]),
    v.sectors.map(([, proof]) => unhex(proof)),
    new Uint8Array(),
    null,
    false,
    false,
  ],
  SubmitWindowedPoSt: (v) => [
    v.deadline,
    v.partitions.map((i) => [i, new Uint8Array()]),
    [[v.proof_type, unhex(v.proof)]],
    v.chain_commit_epoch,
    unhex(v.chain_commit_rand),
  ],
  DeclareFaults: declarations,
  DeclareFaultsRecovered: declarations,
  TerminateSectors: declarations,
}
const methods = {
  SubmitWindowedPoSt: 5,
  TerminateSectors: 9,
  DeclareFaults: 10,
  DeclareFaultsRecovered: 11,
  PreCommitSectorBatch2: 28,
  ProveCommitSectors3: 34,
}

function fail(v, what, got, want) {
  console.error(`MISMATCH ${v.name}: ${what}\n  iso/dag-cbor: ${got}\n  vector:       ${want}`)
  process.exit(1)
}

const vectors = JSON.parse(readFileSync(process.argv[2], 'utf8'))
for (const v of vectors) {
  const lotus = { ...v.message, Params: v.message.Params ?? '' }
  const m = Message.fromLotus(lotus)
  const bytes = m.serialize()
  if (hex(bytes) !== v.cbor) fail(v, 'message CBOR', hex(bytes), v.cbor)
  const cid = CID.decode(m.cidBytes()).toString()
  if (cid !== v.cid) fail(v, 'message CID', cid, v.cid)
  if (v.message.CID['/'] !== cid) fail(v, 'the JSON CID field', cid, v.message.CID['/'])
  if (v.message.Method !== methods[v.kind]) fail(v, 'method', methods[v.kind], v.message.Method)
  const want = dagCbor.encode(params[v.kind](v.values))
  if (hex(want) !== hex(b64(v.message.Params))) fail(v, 'params', hex(want), hex(b64(v.message.Params)))
  // A secp256k1-signed message is named by the CID of [message, signature bytes (type ‖ data)].
  const s = v.signed
  const sig = Uint8Array.from([s.Signature.Type, ...b64(s.Signature.Data)])
  const signedBytes = dagCbor.encode([dagCbor.decode(bytes), sig])
  const signedCid = CID.decode(lotusCid(signedBytes)).toString()
  if (signedCid !== s.CID['/']) fail(v, 'signed message CID', signedCid, s.CID['/'])
  // The signature is the sender's, and iso-filecoin signing with the same test key makes the
  // same bytes (secp256k1 with RFC 6979 nonces over blake2b-256 of the CID).
  const signer = recoverAddress(Signature.fromLotus(s.Signature), m.cidBytes(), 'testnet').toString()
  if (signer !== v.message.From) fail(v, 'signer', signer, v.message.From)
  const own = sign(unhex(v.test_private_key), 'SECP256K1', m.cidBytes())
  if (hex(own.data) !== hex(b64(s.Signature.Data))) fail(v, 'signature', hex(own.data), hex(b64(s.Signature.Data)))
  console.log(`ok ${v.name}`)
}
