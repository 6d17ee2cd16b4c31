// Package cluster lets several relayd processes act as one service on a
// shared Redis (relayd --redis URL): a registry of live nodes with their
// load, room placement, cluster-wide pub/sub and dead-node detection.
//
// It imports nothing of relayd except internal/ids, so app/ and signaling/
// can both use it without an import cycle.
//
// # API
//
//	c, err := cluster.Open(ctx, cluster.Options{URL: "redis://...", Advertise: "http://10.0.0.5:8800"})
//	defer c.Close()                        // stops goroutines, deregisters, closes the client Open made
//	c.SetLoad(func() cluster.Load {...})   // sampled at every heartbeat; keep it fast
//	c.Nodes(ctx) / c.Node(ctx, id)         // live nodes (sorted by ID) / one live node
//	c.PlaceRoom(ctx, room)                 // owner of room, placing it on the least-loaded node if needed
//	c.RoomNode(ctx, room)                  // owner without placing
//	c.ReleaseRoom(ctx, room)               // drop the placement if this node owns it
//	c.Publish(ctx, ch, msg) / c.Subscribe(ch, fn)
//	c.OnNodeGone(func(n cluster.Node, rooms []string, owner bool) {...})
//	cpu := cluster.NewCPUMeter(); ... Load{CPU: cpu.Sample()}
//
// # Keys
//
// With prefix p (default "relayd:"):
//
//	{p}nodes               HASH  id -> the node's last heartbeat as JSON (no TTL). Membership: a
//	                             field whose {p}node:{id} is missing is a dead node awaiting cleanup.
//	{p}node:{id}           HASH  url, started, seen (unix ms), rooms, participants, pps, cpu;
//	                             PEXPIRE TTL at every heartbeat. Exists <=> the node is alive.
//	{p}node:{id}:rooms     SET   rooms placed on the node.
//	{p}room:{room}         STRING owner node id.
//	{p}gone:{id}           LIST  tombstone of a dead node: [cleanup winner id, node JSON, room...],
//	                             PEXPIRE 10*TTL.
//	{p}ch:{channel}        pub/sub channel of Publish/Subscribe.
//
// Liveness is decided by Redis key expiry alone, never by comparing clocks
// of different machines, so clock skew between nodes does not matter.
//
// Every multi-key change is one Lua script, so it is atomic. Scripts build
// key names from the prefix and declare {p}nodes as KEYS[1] for routing: on
// Redis Cluster give a prefix with a hash tag (e.g. "{relayd}:") so that all
// keys share one slot. A single Redis or Sentinel needs nothing.
//
// # Placement
//
// PlaceRoom keeps a recorded owner while it is alive (sticky). Otherwise one
// script picks the alive node with the smallest
// (CPU in 0.25-core steps, rooms, participants, id) and records it, so two
// nodes placing the same new room at once get the same answer. rooms is
// max(reported Load.Rooms, placements recorded on the node): placements
// count at once, while a reported load only changes at the next heartbeat.
//
// # Dead nodes
//
// Every node runs a watch loop (each Heartbeat) that reads the registry and
// the alive keys in one script. A node is a candidate when it is registered
// without an alive key, or when this node saw it alive on the previous tick
// and it is no longer alive. For each candidate a cleanup script runs:
//
//   - the first caller finds it registered and dead, removes its registry
//     field, its rooms set and those of its room placements that still
//     name it, writes the tombstone {p}gone:{id}, and gets owner=true;
//   - later callers find the tombstone and get the same node and rooms with
//     owner=false;
//   - no registration and no tombstone means the node left through Close
//     (it released its rooms itself): nothing is reported.
//
// So each survivor reports a dead node exactly once, all survivors report
// the same rooms, and exactly one is the owner. Survivors read the rooms
// from Redis, not from a pub/sub message, so a survivor whose connection
// blips does not miss the report. The tombstone lives 10*TTL (30 heartbeats)
// to give a slow survivor time to read it, then nothing of the dead node
// remains in Redis. A dead node's room that PlaceRoom re-placed before the
// cleanup ran is not reported: it lives on elsewhere.
//
// A node that was declared dead while still running (it stalled for longer
// than TTL) re-registers on its next heartbeat, logs a warning and calls
// the OnEvicted callbacks: its room placements are gone by then and its
// rooms ended in the store, so relayd ends the rooms it still serves.
//
// # Goroutines
//
// Open starts a heartbeat goroutine and a watch goroutine; OnNodeGone
// callbacks run on the watch goroutine so a slow callback never delays a
// heartbeat. Subscribe shares one Redis connection among all subscriptions
// (one reader goroutine) and runs each subscription's fn on its own
// goroutine, in order. Close stops all of them; do not call Close from a
// callback.
package cluster
