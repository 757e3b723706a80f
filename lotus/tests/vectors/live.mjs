// A Lotus client no one here wrote (iso-filecoin's RPC, over HTTP POST with a Bearer token)
// reads a running node: ChainHead, StateMinerInfo (and its worker's StateAccountKey),
// StateMinerProvingDeadline, the partitions
// of every deadline (StateMinerPartitions), StateSectorGetInfo of each sector given, and
// ChainGetMessage of each message given, whose CBOR and CID iso-filecoin recomputes from the
// node's Lotus JSON (they must match the CID the node wrote). Prints what it read as one JSON
// object; exits 1 on an RPC error or a CID that does not match.
//
//   FULLNODE_API_INFO=<token>:/ip4/127.0.0.1/tcp/<port>/http \
//     node live.mjs <miner> <sector,...> <message CID,...>

import { Message } from 'iso-filecoin/message'
import { RPC } from 'iso-filecoin/rpc'
import { CID } from 'multiformats/cid'

const [miner, sectorList, msgList] = process.argv.slice(2)
const info = process.env.FULLNODE_API_INFO ?? ''
const i = info.indexOf(':/')
const token = info.slice(0, i)
const [, , host, , port] = info.slice(i + 1).split('/')
const rpc = new RPC({ api: `http://${host}:${port}/rpc/v1`, token, network: 'testnet' })

async function call(method, params = []) {
  const r = await rpc.call({ method, params })
  if (r.error) {
    console.error(`${method}: ${r.error.message ?? r.error}`)
    process.exit(1)
  }
  return r.result
}

const head = await rpc.chainHead()
if (head.error) {
  console.error(`ChainHead: ${head.error.message}`)
  process.exit(1)
}
const out = { head: { height: head.result.Height, cids: head.result.Cids.map((c) => c['/']) } }
const mi = await call('Filecoin.StateMinerInfo', [miner, null])
out.miner = { worker: mi.Worker, sectorSize: mi.SectorSize, partitionSectors: mi.WindowPoStPartitionSectors }
out.miner.workerKey = await call('Filecoin.StateAccountKey', [mi.Worker, null])
const dl = await call('Filecoin.StateMinerProvingDeadline', [miner, null])
out.deadline = { index: dl.Index, open: dl.Open, close: dl.Close, challenge: dl.Challenge, window: dl.WPoStChallengeWindow }
out.partitions = {}
for (let d = 0; d < dl.WPoStPeriodDeadlines; d++) {
  const ps = await call('Filecoin.StateMinerPartitions', [miner, d, null])
  if (ps.length) out.partitions[d] = ps.map((p) => ({ all: p.AllSectors, faulty: p.FaultySectors }))
}
out.sectors = {}
for (const n of (sectorList || '').split(',').filter(Boolean)) {
  const s = await call('Filecoin.StateSectorGetInfo', [miner, Number(n), null])
  out.sectors[n] = s && { sealedCid: s.SealedCID['/'], activation: s.Activation, proof: s.SealProof }
}
out.messages = {}
for (const c of (msgList || '').split(',').filter(Boolean)) {
  const m = await call('Filecoin.ChainGetMessage', [{ '/': c }])
  const cid = CID.decode(Message.fromLotus({ ...m, Params: m.Params ?? '' }).cidBytes()).toString()
  if (cid !== m.CID['/']) {
    console.error(`message ${c}: iso-filecoin names it ${cid}, the node ${m.CID['/']}`)
    process.exit(1)
  }
  out.messages[c] = { method: m.Method, from: m.From, to: m.To, nonce: m.Nonce, cid }
}
console.log(JSON.stringify(out))
