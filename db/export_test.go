package db

// PipelinedBegins is how many queries have gone in one batch with their
// transaction's BEGIN.
func PipelinedBegins() int64 { return pipelinedBegins.Load() }

// CommitAfter is the commitAfter marker.
var CommitAfter any = commitAfter{}
