package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// OpLog is a [Recorder] that appends each operation's begin and end to a
// file, one JSON line each, written before the operation starts and after
// it returns: a crash-mode worker process killed at any instant leaves a
// log that says which operations it had begun and which had ended.
type OpLog struct {
	mu sync.Mutex
	f  *os.File
}

var _ Recorder = (*OpLog)(nil)

// CreateOpLog creates (or truncates) the log at path.
func CreateOpLog(path string) (*OpLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return &OpLog{f: f}, nil
}

type logLine struct {
	Begin *Op `json:"b,omitempty"`
	End   *Op `json:"e,omitempty"`
}

func (l *OpLog) write(line logLine) {
	b, err := json.Marshal(line)
	if err != nil {
		panic(err) // an Op always encodes
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// One write per line: a kill leaves at most the last line cut short.
	_, _ = l.f.Write(append(b, '\n'))
}

// Begin implements [Recorder].
func (l *OpLog) Begin(op *Op) { l.write(logLine{Begin: op}) }

// Finish implements [Recorder].
func (l *OpLog) Finish(op *Op, done Op) {
	*op = done
	l.write(logLine{End: &done})
}

// Close closes the file.
func (l *OpLog) Close() error { return l.f.Close() }

// ReadOpLog reads a log written by an [OpLog] into h. An operation that
// began and did not end (its process was killed) is recorded as [Unknown],
// ended at killed.
func ReadOpLog(r io.Reader, h *History, killed time.Time) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	open := map[string]*Op{}
	var order []*Op
	for sc.Scan() {
		var line logLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue // the last line, cut by the kill
		}
		switch {
		case line.Begin != nil:
			op := line.Begin
			open[op.ID] = op
			order = append(order, op)
		case line.End != nil:
			if op := open[line.End.ID]; op != nil {
				*op = *line.End
				delete(open, op.ID)
			}
		}
	}
	for _, op := range order {
		if _, unfinished := open[op.ID]; unfinished {
			op.Outcome, op.End, op.Err = Unknown, killed, "process killed while it ran"
		}
		h.Begin(op)
	}
	return len(order), sc.Err()
}
