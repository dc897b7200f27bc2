// Package simnet runs thousands of real pullnet nodes in one process on
// go-libp2p's mocknet, for the pullsim simulator and its tests.
//
// Every node is a real node.Node (or, for the baseline, a plain
// go-libp2p-kad-dht instance) on a mocknet host; only the network under
// them is simulated. The harness adds what mocknet lacks or makes too
// dear at scale:
//
//   - addresses spread over many IPv4 /16 blocks (Addr), so routing-table
//     diversity and public-address filters see an internet-like spread;
//   - a one-way latency per link drawn from a seeded distribution
//     (Latency), with connection set-up costing a number of round trips
//     and dials to departed peers failing only after a timeout;
//   - links made on first dial instead of mocknet's LinkAll (Host wraps the
//     mocknet host so every Connect, NewStream and DialPeer goes through
//     it), and stream closes that wait for the last write to arrive (a
//     mocknet stream closed right after a write delivers it at once);
//   - lean options that keep the node code real but make N = 3,000 fit:
//     a one-request-per-stream DHT message sender (OneShotSender), routing
//     tables filled from a global view (the k closest peers per bucket,
//     computed centrally) or by real bootstraps, auto-refresh off, a real
//     go-libp2p connection manager per host, and optionally gossip topic
//     discovery answered locally instead of by DHT lookups;
//   - counters: DHT requests sent and received per node by message type and
//     key class, bytes written per node by protocol, and per-node load of
//     tracked keys.
//
// The workload driver (Run) advertises, finds, churns and measures; see
// cmd/pullsim and SCALING.md.
package simnet
