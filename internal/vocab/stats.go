package vocab

// GET /stats/hourly (the dashboard's chart): the window and the limit
// parameter's bounds, shared by the projection, the handler and the API
// document.
const (
	// StatsHours is the window: the current hour and the 23 before it.
	StatsHours = 24
	// StatsDefaultSources and StatsMaxSources bound ?limit=, the cameras
	// reported one by one (the rest are summed): a chart shows a handful
	// of lines legibly, and a store with many sources must not make the
	// answer grow without bound.
	StatsDefaultSources = 20
	StatsMaxSources     = 200
)
