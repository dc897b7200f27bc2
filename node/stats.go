package node

// Stats are counters of what the node has done and refused since it
// started. They only grow.
type Stats struct {
	// Finds this node ran, and the results they yielded.
	FindsRun, FindResults int64
	// Find requests this node answered for others, and results it sent.
	FindsServed, ResultsServed int64
	// Requests dropped because they were unreadable, oversized or garbled.
	MalformedRequests int64
	// Find requests whose query did not parse.
	BadQueries int64
	// Records other peers answered with that the finder dropped: bad or
	// foreign signature, stale seq, expired, or not matching the query.
	DroppedRecords int64
	// Connect requests this node granted and declined as a provider.
	ConnectsGranted, ConnectsDeclined int64
	// Ratings heard by gossip and sync, and what became of them.
	Ratings RatingStats
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	f, fs, cs := &n.finder.Stats, &n.findSvc.Stats, &n.connSvc.Stats
	return Stats{
		FindsRun:          f.Finds.Load(),
		FindResults:       f.Results.Load(),
		FindsServed:       fs.Served.Load(),
		ResultsServed:     fs.Results.Load(),
		MalformedRequests: fs.Malformed.Load() + cs.Malformed.Load(),
		BadQueries:        fs.BadQuery.Load(),
		DroppedRecords:    f.BadRecord.Load() + f.NotOwner.Load() + f.Stale.Load() + f.Expired.Load() + f.NoMatch.Load(),
		ConnectsGranted:   cs.Granted.Load(),
		ConnectsDeclined:  cs.Declined.Load(),
		Ratings:           n.ratingStats(),
	}
}
