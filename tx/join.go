package tx

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// checkJoin returns an error if a scope joining st asked for options that
// st cannot honour: transaction options are fixed when it starts, and only
// its owner retries. Options equal to st's are no conflict.
func checkJoin(st *txState, cfg *config, pc uintptr) error {
	var diffs []string
	if cfg.set&setReadConcern != 0 && rcString(cfg.readConcern) != rcString(st.owner.cfg.readConcern) {
		diffs = append(diffs, fmt.Sprintf("read concern %s, the transaction has %s", rcString(cfg.readConcern), rcString(st.owner.cfg.readConcern)))
	}
	if cfg.set&setWriteConcern != 0 && wcString(cfg.writeConcern) != wcString(st.owner.cfg.writeConcern) {
		diffs = append(diffs, fmt.Sprintf("write concern %s, the transaction has %s", wcString(cfg.writeConcern), wcString(st.owner.cfg.writeConcern)))
	}
	if cfg.set&setReadPref != 0 && rpString(cfg.readPref) != rpString(st.owner.cfg.readPref) {
		diffs = append(diffs, fmt.Sprintf("read preference %s, the transaction has %s", rpString(cfg.readPref), rpString(st.owner.cfg.readPref)))
	}
	if cfg.set&setMaxAttempts != 0 && cfg.maxAttempts != st.owner.cfg.maxAttempts {
		diffs = append(diffs, fmt.Sprintf("max attempts %s, the transaction has %s (only the outermost scope retries)", attemptsString(cfg.maxAttempts), attemptsString(st.owner.cfg.maxAttempts)))
	}
	if cfg.set&setBackoff != 0 && cfg.backoff != st.owner.cfg.backoff {
		diffs = append(diffs, fmt.Sprintf("backoff %+v, the transaction has %+v (only the outermost scope retries)", cfg.backoff, st.owner.cfg.backoff))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: scope %s joins transaction %s but asks for %s",
		ErrOptionConflict, scopeName(cfg.name, pc), st.name(), strings.Join(diffs, "; "))
}

func rcString(rc *readconcern.ReadConcern) string {
	if rc == nil || rc.Level == "" {
		return "(server default)"
	}
	return rc.Level
}

func wcString(wc *writeconcern.WriteConcern) string {
	if wc == nil {
		return "(server default)"
	}
	j := "unset"
	if wc.Journal != nil {
		j = fmt.Sprint(*wc.Journal)
	}
	return fmt.Sprintf("{w: %v, j: %s}", wc.W, j)
}

func rpString(rp *readpref.ReadPref) string {
	if rp == nil {
		return "(server default)"
	}
	return rp.String()
}

func attemptsString(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}
