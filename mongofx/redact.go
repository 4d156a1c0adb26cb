package mongofx

import "strings"

// redact hides the password of a connection string, for logs and errors.
// net/url cannot parse every MongoDB URI (several hosts), so it is done by
// hand: "mongodb://user:secret@h1,h2/" becomes "mongodb://user:xxxxx@h1,h2/".
func redact(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return uri
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return uri
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
