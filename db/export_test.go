package db

// PipelinedBegins is how many queries have gone in one batch with their
// transaction's BEGIN.
func PipelinedBegins() int64 { return pipelinedBegins.Load() }

// CommitAfter is the commitAfter marker.
var CommitAfter any = commitAfter{}

// CheckpointEvery is how many Transact commits start a background
// checkpoint on SQLite.
const CheckpointEvery = checkpointEvery

// SetCheckpointHook makes every background checkpoint call f before it
// checkpoints, until the test ends.
func SetCheckpointHook(t interface{ Cleanup(func()) }, f func()) {
	checkpointHook = f
	t.Cleanup(func() { checkpointHook = nil })
}

// GatheredBatches is how many round trips have carried several of a
// Together's queries.
func GatheredBatches() int64 { return gatheredBatches.Load() }
