package mongotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
	"go.uber.org/zap"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Limits the server advertises in hello and enforces on the wire.
const (
	headerLen          = 16
	maxMessageSize     = 48_000_000
	maxBSONObjectSize  = 16 * 1024 * 1024
	maxWriteBatchSize  = 100_000
	msgRequiredFlagsLo = 0xffff // OP_MSG bits 0-15 must be understood
	// maxInternalDocSize is BSONObjMaxInternalSize: a command body, a
	// document of a document sequence or a pipeline's document may pass
	// maxBSONObjectSize by this much (room for a command's own fields
	// around a 16 MB document), no more.
	maxInternalDocSize = maxBSONObjectSize + 16*1024
)

// objectTooLarge is BSONObj::_assertInvalid's error for an object of n
// bytes, more than maxInternalDocSize.
func objectTooLarge(n int) (code int32, msg string) {
	return merr.BSONObjectTooLarge, fmt.Sprintf("BSONObj size: %d (0x%X) is invalid. Size must be between 0 and %d(16MB)", n, n, maxInternalDocSize)
}

// request is one decoded command, handed to [Server.dispatch].
type request struct {
	db   string // the $db field (OP_MSG) or the namespace's database (OP_QUERY)
	name string // the first key of cmd, as sent
	// cmd is the command body with every OP_MSG document sequence merged in
	// as an array field named after its identifier ("documents", ...).
	cmd  bson.D
	conn *conn
	// raw is the kind-0 body as received, without document sequences. It is
	// not retained by the wire layer and may be kept by dispatch.
	raw []byte
	// moreToCome is set for unacknowledged OP_MSG requests: the command runs
	// but its reply is discarded.
	moreToCome bool
	requestID  int32
	// op is the storage of the command's op (see Server.run): one
	// allocation per request instead of two.
	op op
}

// conn is one client connection. Its goroutine reads a request, dispatches
// it and writes the reply, one at a time; nothing else writes to nc, so
// dispatch may use the conn's fields without locking.
type conn struct {
	id  int64
	srv *Server
	nc  net.Conn
	log *zap.Logger

	// appName is the handshake's client.application.name, set by hello.
	appName string

	// mu guards what $currentOp reads of the connection from other
	// goroutines: cur, the command in flight, and client. The
	// connection's own goroutine, their only writer, reads them freely.
	mu     sync.Mutex
	cur    inflight
	client *clientInfo

	// closeAfter, when dispatch sets it, closes the connection once the
	// current request's reply is written. Together with a nil reply from
	// dispatch (which sends nothing) it emulates failCommand's
	// closeConnection: the client sees the socket close mid-request.
	closeAfter bool

	// r buffers nc's input. serve reads requests from it; while an
	// awaitable hello waits (awaitHello), a watcher peeks at it instead.
	r *bufio.Reader

	// group is the client the connection belongs to, from its handshake;
	// farewellsSeen is how many of the client's farewells an awaitable
	// hello on this connection has answered (see clientGroup), under
	// group.mu.
	group         *clientGroup
	farewellsSeen uint64

	// out is the last reply's buffer, reused for the next: a reply is
	// written before the next request is read.
	out []byte
	// in is the last request's buffer, reused for the next: nothing keeps
	// a request's bytes once it is answered (decoding copies every value
	// out of them, so no stored document aliases in).
	in []byte
	// seqs is the array of a request's document sequences (at most two).
	seqs [2]docSequence
	// repeats shares the decoded lsid and $clusterTime of the
	// connection's last command with the next that repeats their bytes.
	repeats bsonkit.Repeats
	// req is the request being served, reused for the next: nothing
	// keeps a request, or the op in it, once it is answered (a cursor or
	// session that outlives the command copies what it needs; a session
	// drops its attachment, op.sessOp, before the command returns), and
	// handle clears it once the reply is encoded.
	req request
}

// maxKeptReplyBuf bounds the reply buffer a connection keeps, and
// maxKeptRequestBuf the request buffer.
const (
	maxKeptReplyBuf   = 1 << 20
	maxKeptRequestBuf = 1 << 20
)

func (s *Server) newConn(nc net.Conn) *conn {
	id := s.nextConnID.Add(1)
	remote := nc.RemoteAddr().String()
	return &conn{
		id:      id,
		srv:     s,
		nc:      nc,
		log:     s.log.With(zap.Int64("conn", id), zap.String("remote", remote)),
		repeats: bsonkit.Repeats{Names: [2]string{"lsid", "$clusterTime"}},
		client:  &clientInfo{connID: id, remote: remote},
	}
}

func (c *conn) serve(ctx context.Context) {
	defer c.nc.Close()
	c.log.Debug("connection opened")
	c.r = bufio.NewReaderSize(c.nc, 64<<10)
	for {
		wm, err := readMessageInto(c.r, c.in)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				c.log.Debug("connection closed")
			} else {
				c.log.Info("closing connection", zap.Error(err))
			}
			return
		}
		out, keep := c.handle(ctx, wm)
		if cap(wm) <= maxKeptRequestBuf {
			c.in = wm[:0]
		} else {
			c.in = nil
		}
		if out != nil {
			if _, err := c.nc.Write(out); err != nil {
				c.log.Debug("write reply", zap.Error(err))
				return
			}
		}
		if !keep || c.closeAfter {
			c.log.Debug("closing connection on request")
			return
		}
	}
}

// readMessage reads one wire message, header included.
func readMessage(r io.Reader) ([]byte, error) { return readMessageInto(r, nil) }

// readMessageInto is readMessage into buf's array when the message fits in
// it, else into a new one.
func readMessageInto(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) < headerLen {
		buf = make([]byte, 0, 512)
	}
	wm := buf[:4]
	if _, err := io.ReadFull(r, wm); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(wm))
	if n < headerLen || n > maxMessageSize {
		return nil, fmt.Errorf("invalid message length %d", n)
	}
	if int(n) > cap(wm) {
		wm = append(make([]byte, 0, n), wm...)
	}
	wm = wm[:n]
	if _, err := io.ReadFull(r, wm[4:]); err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return wm, nil
}

// handle answers one wire message. It returns the reply to write (nil for
// none), valid until the next call, and whether the connection stays open.
func (c *conn) handle(ctx context.Context, wm []byte) (out []byte, keep bool) {
	var msg message // on the stack: decodeMessage's would escape
	m := &msg
	m.sequences = c.seqs[:0]
	defer func() {
		clear(c.seqs[:]) // they point into wm
		// The reply is encoded (out is the connection's own buffer): an
		// idle connection keeps nothing of the command, its raw body
		// (wm, maybe bigger than the buffer the connection keeps) nor
		// what its op points at.
		c.req = request{}
	}()
	usable, err := m.decode(wm)
	var cmd bson.D
	if err == nil {
		cmd, err = m.command(&c.repeats)
	}
	if err != nil {
		var we *wireError
		if !errors.As(err, &we) || we.fatal || !usable {
			c.log.Info("unusable message", zap.Error(err))
			return nil, false
		}
		c.log.Debug("malformed request", zap.Error(err))
		if m.moreToCome() {
			return nil, true
		}
		return c.encodeReply(m, merr.New(we.code, "%s", we.msg).Doc()), true
	}

	req := &c.req
	*req = request{
		db:         m.db,
		name:       cmd[0].Key,
		cmd:        cmd,
		conn:       c,
		raw:        m.body,
		moreToCome: m.moreToCome(),
		requestID:  m.requestID,
	}
	c.begin(req)
	reply := c.srv.serveRequest(ctx, req)
	c.end()
	if reply == nil || req.moreToCome {
		return nil, true
	}
	return c.encodeReply(m, reply), true
}

// serveRequest runs the request's handler (dispatch), turning a panic into an InternalError reply
// so that one bad request never takes the server down.
func (s *Server) serveRequest(ctx context.Context, req *request) (reply bson.D) {
	defer func() {
		if r := recover(); r != nil {
			req.conn.log.Error("command panicked",
				zap.String("command", req.name), zap.Any("panic", r), zap.StackSkip("stack", 1))
			reply = merr.New(merr.InternalError, "internal error executing %s: %v", req.name, r).Doc()
		}
	}()
	return s.handler(ctx, req)
}

// encodeReply frames reply as the answer to m: OP_MSG for OP_MSG, OP_REPLY
// for OP_QUERY. It appends $clusterTime and operationTime to the document
// unless dispatch set them already (a write reports its own tick as
// operationTime).
func (c *conn) encodeReply(m *message, reply bson.D) []byte {
	reply = c.srv.withTopologyVersion(reply)
	reqID := c.srv.nextReqID.Add(1)
	dst := c.out[:0]
	if cap(dst) == 0 || cap(dst) > maxKeptReplyBuf {
		dst = make([]byte, 0, 512)
	}
	var idx int32
	//lint:ignore SA1019 legacy handshake: drivers still send their first hello as OP_QUERY
	if m.opCode == wiremessage.OpQuery {
		idx, dst = wiremessage.AppendHeaderStart(dst, reqID, m.requestID, wiremessage.OpReply)
		var flags wiremessage.ReplyFlag
		if m.queryFailure {
			flags = wiremessage.QueryFailure
		}
		dst = wiremessage.AppendReplyFlags(dst, flags)
		dst = wiremessage.AppendReplyCursorID(dst, 0)
		dst = wiremessage.AppendReplyStartingFrom(dst, 0)
		dst = wiremessage.AppendReplyNumberReturned(dst, 1)
	} else {
		idx, dst = wiremessage.AppendHeaderStart(dst, reqID, m.requestID, wiremessage.OpMsg)
		dst = wiremessage.AppendMsgFlags(dst, 0)
		dst = wiremessage.AppendMsgSectionType(dst, wiremessage.SingleDocument)
	}
	body := len(dst)
	dst, err := bsonkit.AppendDocument(dst, reply)
	if err != nil {
		c.log.Error("marshal reply", zap.Error(err))
		reply = merr.New(merr.InternalError, "cannot encode reply: %v", err).Doc()
		dst, _ = bsonkit.AppendDocument(dst[:body], reply)
	}
	dst = c.srv.appendClusterTime(dst, body, reply)
	c.out = dst
	return bsoncore.UpdateLength(dst, idx, int32(len(dst)-int(idx)))
}

// appendClusterTime adds $clusterTime and operationTime, unless reply has
// them, to the document that dst holds from offset doc on (encoded from
// reply). The signature is a dummy, as on a server without auth keys.
func (s *Server) appendClusterTime(dst []byte, doc int, reply bson.D) []byte {
	var hasCT, hasOT bool
	for _, e := range reply {
		switch e.Key {
		case "$clusterTime":
			hasCT = true
		case "operationTime":
			hasOT = true
		}
	}
	if hasCT && hasOT {
		return dst
	}
	now := s.clusterTime()
	dst = dst[:len(dst)-1] // reopen the document: drop its terminator
	if !hasCT {
		var ct, sig int32
		ct, dst = bsoncore.AppendDocumentElementStart(dst, "$clusterTime")
		dst = bsoncore.AppendTimestampElement(dst, "clusterTime", now.T, now.I)
		sig, dst = bsoncore.AppendDocumentElementStart(dst, "signature")
		dst = bsoncore.AppendBinaryElement(dst, "hash", 0, zeroHash[:])
		dst = bsoncore.AppendInt64Element(dst, "keyId", 0)
		dst, _ = bsoncore.AppendDocumentEnd(dst, sig)
		dst, _ = bsoncore.AppendDocumentEnd(dst, ct)
	}
	if !hasOT {
		dst = bsoncore.AppendTimestampElement(dst, "operationTime", now.T, now.I)
	}
	dst = append(dst, 0)
	return bsoncore.UpdateLength(dst, int32(doc), int32(len(dst)-doc))
}

// zeroHash is the dummy $clusterTime signature hash.
var zeroHash [20]byte

// wireError is a malformed request. A fatal one closes the connection; any
// other is answered with an error reply carrying code.
type wireError struct {
	code  int32
	msg   string
	fatal bool
}

func (e *wireError) Error() string { return e.msg }

func fatalf(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...), fatal: true}
}

func parseErrorf(format string, args ...any) error {
	return &wireError{code: merr.FailedToParse, msg: fmt.Sprintf(format, args...)}
}

// message is a decoded OP_MSG or OP_QUERY.
type message struct {
	requestID int32
	opCode    wiremessage.OpCode
	flags     wiremessage.MsgFlag // OP_MSG only
	body      bsoncore.Document
	sequences []docSequence // OP_MSG only
	db        string        // from the namespace for OP_QUERY; from $db after command()
	// queryFailure marks an OP_QUERY answered with an error, which OP_REPLY
	// flags as QueryFailure.
	queryFailure bool
}

// docSequence is an OP_MSG document sequence: data holds n whole
// documents, back to back.
type docSequence struct {
	identifier string
	data       []byte
	n          int
}

// readDocSequence reads a document sequence section, as the driver's
// wiremessage.ReadMsgSectionDocumentSequence does, without allocating
// for the usual identifiers. largest is the size of its largest document.
func readDocSequence(src []byte) (seq docSequence, rest []byte, largest int, ok bool) {
	if len(src) < 4 {
		return seq, src, 0, false
	}
	length := int(int32(binary.LittleEndian.Uint32(src)))
	if length > len(src) || length < 4 {
		return seq, src, 0, false
	}
	body, rest := src[4:length], src[length:]
	end := bytes.IndexByte(body, 0)
	if end < 0 {
		return seq, src, 0, false
	}
	switch id := body[:end]; string(id) {
	case "documents":
		seq.identifier = "documents"
	case "updates":
		seq.identifier = "updates"
	case "deletes":
		seq.identifier = "deletes"
	default:
		seq.identifier = string(id)
	}
	seq.data = body[end+1:]
	for rem := seq.data; len(rem) > 0; seq.n++ {
		var doc bsoncore.Document
		if doc, rem, ok = bsoncore.ReadDocument(rem); !ok {
			return docSequence{}, src, 0, false
		}
		largest = max(largest, len(doc))
	}
	return seq, rest, largest, true
}

func (m *message) moreToCome() bool {
	return m.opCode == wiremessage.OpMsg && m.flags&wiremessage.MoreToCome != 0
}

// decodeMessage parses the framing of one wire message, header included.
// It returns a nil message only with a fatal error (unusable header or
// opcode); otherwise the message is complete enough to be answered.
// It never panics, whatever wm holds.
func decodeMessage(wm []byte) (*message, error) {
	m := new(message)
	usable, err := m.decode(wm)
	if !usable {
		return nil, err
	}
	return m, err
}

// decode is decodeMessage into m; usable is false with a fatal error.
func (m *message) decode(wm []byte) (usable bool, err error) {
	length, reqID, _, opCode, rem, ok := wiremessage.ReadHeader(wm)
	if !ok {
		return false, fatalf("message shorter than its header: %d bytes", len(wm))
	}
	if int(length) != len(wm) || length > maxMessageSize {
		return false, fatalf("message length %d does not match %d bytes received", length, len(wm))
	}
	// sequences' array, if the caller gave one, is kept for this message.
	*m = message{requestID: reqID, opCode: opCode, sequences: m.sequences[:0]}
	switch opCode {
	case wiremessage.OpMsg:
		return true, m.decodeMsg(wm, rem)
	//lint:ignore SA1019 legacy handshake: drivers still send their first hello as OP_QUERY
	case wiremessage.OpQuery:
		return true, m.decodeQuery(rem)
	case wiremessage.OpCompressed:
		return false, fatalf("OP_COMPRESSED received but no compressor was negotiated")
	default:
		return false, fatalf("unsupported opcode %d", int32(opCode))
	}
}

// castagnoli is the CRC-32C table of OP_MSG checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// decodeMsg parses an OP_MSG; wm is the whole message, src what follows
// its header.
func (m *message) decodeMsg(wm, src []byte) error {
	flags, src, ok := wiremessage.ReadMsgFlags(src)
	if !ok {
		return fatalf("OP_MSG without flags")
	}
	m.flags = flags
	// OpMsg::parse (src/mongo/rpc/op_msg.cpp) gives each malformation a
	// code of its own; IllegalOpMsgFlag and TooManyDocumentSequences are
	// ConnectionFatalMessageParseErrors, which close the connection
	// without a reply.
	if unknown := flags & msgRequiredFlagsLo &^ (wiremessage.ChecksumPresent | wiremessage.MoreToCome); unknown != 0 {
		return &wireError{code: merr.IllegalOpMsgFlag, fatal: true,
			msg: fmt.Sprintf("Message contains illegal flags value: Ob%032b", uint32(flags))}
	}
	if flags&wiremessage.ChecksumPresent != 0 {
		if len(src) < 4 {
			return parseErrorf("OP_MSG checksum flag set but message has no checksum")
		}
		// MongoDB verifies it on every connection but TLS ones
		// (OpMsg::parse, src/mongo/rpc/op_msg.cpp).
		want := binary.LittleEndian.Uint32(wm[len(wm)-4:])
		if crc32.Checksum(wm[:len(wm)-4], castagnoli) != want {
			return &wireError{code: merr.ChecksumMismatch, msg: "OP_MSG checksum does not match contents"}
		}
		src = src[:len(src)-4]
	}
	for len(src) > 0 {
		var kind wiremessage.SectionType
		kind, src, _ = wiremessage.ReadMsgSectionType(src)
		switch kind {
		case wiremessage.SingleDocument:
			if m.body != nil {
				return &wireError{code: 40430, msg: "Multiple body sections in message"}
			}
			doc, rest, ok := wiremessage.ReadMsgSectionSingleDocument(src)
			if !ok {
				return &wireError{code: merr.InvalidBSON, msg: "OP_MSG body section is truncated"}
			}
			if len(doc) > maxInternalDocSize {
				code, msg := objectTooLarge(len(doc))
				return &wireError{code: code, msg: msg}
			}
			m.body, src = doc, rest
		case wiremessage.DocumentSequence:
			if len(m.sequences) >= 2 {
				return &wireError{code: merr.TooManyDocumentSequences, fatal: true,
					msg: "Too many document sequences in OP_MSG"}
			}
			seq, rest, largest, ok := readDocSequence(src)
			if !ok {
				return parseErrorf("OP_MSG document sequence is malformed")
			}
			if largest > maxInternalDocSize {
				code, msg := objectTooLarge(largest)
				return &wireError{code: code, msg: msg}
			}
			for _, other := range m.sequences {
				if other.identifier == seq.identifier {
					return &wireError{code: 40431, msg: "Duplicate document sequence: " + seq.identifier}
				}
			}
			m.sequences = append(m.sequences, seq)
			src = rest
		default:
			return &wireError{code: 40432, msg: fmt.Sprintf("Unknown section kind %d", uint8(kind))}
		}
	}
	if m.body == nil {
		return &wireError{code: 40587, msg: "OP_MSG messages must have a body"}
	}
	for _, seq := range m.sequences {
		if atPath(m.body, seq.identifier) {
			return &wireError{code: 40433, msg: "Duplicate field between body and document sequence " + seq.identifier}
		}
	}
	return nil
}

// atPath reports whether the dotted path names an element of body, or
// reaches an array on its way (MongoDB's
// extractElementAtPathOrArrayAlongPath).
func atPath(body bsoncore.Document, path string) bool {
	doc := body
	for {
		part, rest, more := strings.Cut(path, ".")
		v, err := doc.LookupErr(part)
		if err != nil {
			return false
		}
		if !more || v.Type == bsoncore.TypeArray {
			return true
		}
		sub, ok := v.DocumentOK()
		if !ok {
			return false
		}
		doc, path = sub, rest
	}
}

func (m *message) decodeQuery(src []byte) error {
	if len(src) < 4 {
		return fatalf("OP_QUERY without flags")
	}
	src = src[4:] // flags: none of them matter for commands
	i := bytes.IndexByte(src, 0)
	if i < 0 {
		return fatalf("OP_QUERY namespace is not terminated")
	}
	ns := string(src[:i])
	src = src[i+1:]
	if len(src) < 8 {
		return fatalf("OP_QUERY without numberToSkip/numberToReturn")
	}
	src = src[8:]
	doc, _, ok := bsoncore.ReadDocument(src)
	m.queryFailure = true // until proven a valid command
	if !ok {
		return &wireError{code: merr.InvalidBSON, msg: "OP_QUERY query document is truncated"}
	}
	if len(doc) > maxInternalDocSize {
		code, msg := objectTooLarge(len(doc))
		return &wireError{code: code, msg: msg}
	}
	m.body = doc
	// A trailing returnFieldsSelector is meaningless for commands; ignore it.
	db, coll, found := strings.Cut(ns, ".")
	if !found || coll != "$cmd" || db == "" {
		return &wireError{code: merr.UnsupportedOpQueryCommand,
			msg: fmt.Sprintf("OP_QUERY is only supported for commands on <db>.$cmd, not %q", ns)}
	}
	m.db = db
	m.queryFailure = false
	return nil
}

// opQueryAllowed are the commands OP_QUERY may carry.
var opQueryAllowed = map[string]bool{
	"hello": true, "isMaster": true, "ismaster": true, "buildinfo": true, "buildInfo": true,
	"saslStart": true, "saslContinue": true, "authenticate": true,
}

// command converts the body, with document sequences merged in, to a
// bson.D and sets m.db from $db for OP_MSG. repeats (nil: none) is the
// connection's: see bsonkit.Repeats.
func (m *message) command(repeats *bsonkit.Repeats) (bson.D, error) {
	body := m.body
	//lint:ignore SA1019 legacy handshake: drivers still send their first hello as OP_QUERY
	if m.opCode == wiremessage.OpQuery {
		// Legacy wrapped form {$query: {...}, $readPreference: ...}.
		if q, ok := body.Lookup("$query").DocumentOK(); ok {
			body = q
		}
		// Since MongoDB 6.0 OP_QUERY carries only the handshake and
		// authentication (checkAllowedOpQueryCommand).
		if e, err := body.IndexErr(0); err == nil && !opQueryAllowed[e.Key()] {
			m.queryFailure = true
			return nil, &wireError{code: merr.UnsupportedOpQueryCommand,
				msg: fmt.Sprintf("Unsupported OP_QUERY command: %s. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal", e.Key())}
		}
	}
	if err := checkDoc(body); err != nil {
		return nil, err
	}
	if len(body) <= 5 {
		return nil, parseErrorf("empty command document")
	}
	var seqs [2]bsonkit.Sequence // decodeMsg allows two
	for i, seq := range m.sequences {
		for rem := seq.data; len(rem) > 0; {
			var raw bsoncore.Document
			raw, rem, _ = bsoncore.ReadDocument(rem) // whole: checked by readDocSequence
			if err := checkDoc(raw); err != nil {
				return nil, err
			}
		}
		seqs[i] = bsonkit.Sequence{Name: seq.identifier, Docs: seq.data, N: seq.n}
	}
	cmd, err := bsonkit.DecodeCommand(body, seqs[:len(m.sequences)], repeats)
	if err != nil {
		return nil, &wireError{code: merr.InvalidBSON, msg: "invalid BSON: " + err.Error()}
	}
	if m.opCode == wiremessage.OpMsg {
		var dbVal any
		for _, e := range cmd {
			if e.Key == "$db" {
				dbVal = e.Value
				break
			}
		}
		db, ok := dbVal.(string)
		if !ok || db == "" {
			return nil, &wireError{code: merr.Location40571,
				msg: "OP_MSG requests require a $db argument"}
		}
		m.db = db
	}
	return cmd, nil
}

// checkDoc refuses a document a command may not carry: nested too deep,
// or invalid BSON.
func checkDoc(raw bsoncore.Document) error {
	if tooDeep(raw) {
		return &wireError{code: merr.Overflow, msg: fmt.Sprintf("BSONObj exceeded maximum nested object depth: %d", maxBSONDepth)}
	}
	if err := raw.Validate(); err != nil {
		return &wireError{code: merr.InvalidBSON, msg: "invalid BSON: " + err.Error()}
	}
	return nil
}
