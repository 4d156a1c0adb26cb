package bsonkit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The driver's bson.Unmarshal and bson.Marshal find a codec for every value
// through reflection; on the server's hot path (every command in, every
// reply out) that was most of a small command's cost. Decode and Append
// walk the bytes and the bson.D directly and give the same results; what
// they do not know, they hand to the driver.

// errMalformed makes Decode fall back to bson.Unmarshal, whose error
// message is the one to report.
var errMalformed = errors.New("bsonkit: malformed BSON")

// Decode returns the document raw as bson.Unmarshal into a bson.D returns
// it: the same values of the same types (see the package comment), every
// byte copied out of raw. The documents and arrays nested in it share one
// allocation, each capped to its own length, so appending to one never
// writes into another; short strings and binaries may be shared with
// other decoded documents (no one modifies a decoded value in place).
func Decode(raw []byte) (bson.D, error) {
	var d bson.D
	err := errMalformed
	if len(raw) >= 4 && int(binary.LittleEndian.Uint32(raw)) == len(raw) {
		var elems, vals int
		if elems, vals, err = countTree(raw, false, 0); err == nil {
			dec := decoder{elems: make([]bson.E, elems)}
			if vals > 0 {
				dec.vals = make([]any, vals)
			}
			d, err = dec.doc(raw)
		}
	}
	if err != nil {
		// Let the driver say what is wrong, in its words.
		var slow bson.D
		if err := bson.Unmarshal(raw, &slow); err != nil {
			return nil, err
		}
		return slow, nil
	}
	return d, nil
}

// Sequence is an OP_MSG document sequence: Docs holds N whole documents,
// back to back, which a command receives as the array field Name.
type Sequence struct {
	Name string
	Docs []byte
	N    int
}

// DecodeCommand is Decode of an OP_MSG's body with its document sequences
// appended as array fields, as a command sees them. The body, the
// sequences' documents and their arrays share Decode's one allocation (one
// for fields, one for array values), capped as Decode caps them.
//
// A command over maxSharedCommand bytes (body and sequences) is decoded
// instead with each document and array in an allocation of its own, as
// bson.Unmarshal makes them: a value kept after the command (a stored
// document, a remembered lsid) then keeps nothing else of it, and a few
// allocations more are little next to its size. What a value of a small
// command keeps alive is at most that small command.
//
// With repeats (nil: none), a top-level field that repeats the bytes of the
// same field of the last command decoded with it shares that command's
// decoded value.
func DecodeCommand(body []byte, seqs []Sequence, repeats *Repeats) (bson.D, error) {
	if len(body) < 4 || int(binary.LittleEndian.Uint32(body)) != len(body) {
		return decodeCommandApart(body, seqs)
	}
	elems, vals, err := countTop(body, repeats)
	if err != nil {
		return decodeCommandApart(body, seqs)
	}
	elems += len(seqs)
	size := len(body)
	for _, seq := range seqs {
		vals += seq.N
		size += len(seq.Docs)
		for rem := seq.Docs; len(rem) > 0; {
			doc, rest, ok := bsoncore.ReadDocument(rem)
			if !ok {
				return decodeCommandApart(body, seqs)
			}
			e, v, err := countTree(doc, false, 0)
			if err != nil {
				return decodeCommandApart(body, seqs)
			}
			elems, vals, rem = elems+e, vals+v, rest
		}
	}
	dec := decoder{own: size > maxSharedCommand}
	if !dec.own {
		dec.elems = make([]bson.E, elems)
		if vals > 0 {
			dec.vals = make([]any, vals)
		}
	}
	cmd, err := dec.docExtra(body, len(seqs), repeats)
	if err != nil {
		return decodeCommandApart(body, seqs)
	}
	for _, seq := range seqs {
		arr := bson.A{} // never nil: a nil bson.A encodes as null
		if seq.N > 0 {
			var ok bool
			if arr, ok = dec.values(seq.N); !ok {
				return decodeCommandApart(body, seqs)
			}
		}
		rem := seq.Docs
		for i := range arr {
			var doc []byte
			doc, rem, _ = bsoncore.ReadDocument(rem) // whole: counted above
			if arr[i], err = dec.doc(doc); err != nil {
				return decodeCommandApart(body, seqs)
			}
		}
		cmd = append(cmd, bson.E{Key: seq.Name, Value: arr})
	}
	return cmd, nil
}

// decodeCommandApart is DecodeCommand decoding each document on its own,
// for input the one-allocation path refuses: Decode then says what is
// wrong.
func decodeCommandApart(body []byte, seqs []Sequence) (bson.D, error) {
	cmd, err := Decode(body)
	if err != nil {
		return nil, err
	}
	for _, seq := range seqs {
		arr := make(bson.A, 0, seq.N)
		for rem := seq.Docs; len(rem) > 0; {
			doc, rest, ok := bsoncore.ReadDocument(rem)
			if !ok {
				return nil, bsoncore.NewInsufficientBytesError(rem, rem)
			}
			d, err := Decode(doc)
			if err != nil {
				return nil, err
			}
			arr, rem = append(arr, d), rest
		}
		cmd = append(cmd, bson.E{Key: seq.Name, Value: arr})
	}
	return cmd, nil
}

// docBody checks a document's length prefix and terminator and returns its
// elements' bytes.
func docBody(raw []byte) ([]byte, error) {
	if len(raw) < 5 {
		return nil, errMalformed
	}
	n := int(int32(binary.LittleEndian.Uint32(raw)))
	if n < 5 || n > len(raw) || raw[n-1] != 0 {
		return nil, errMalformed
	}
	return raw[4 : n-1], nil
}

// maxDecodeDepth bounds countTree's recursion; deeper input is left to the
// driver, which refuses it.
const maxDecodeDepth = 200

// countTree counts the fields of the documents (elems) and the values of
// the arrays (vals) in raw, a document or (array) an array, nested ones
// included: what Decode allocates at once.
func countTree(raw []byte, array bool, depth int) (elems, vals int, err error) {
	if depth > maxDecodeDepth {
		return 0, 0, errMalformed
	}
	body, err := docBody(raw)
	if err != nil {
		return 0, 0, err
	}
	for len(body) > 0 {
		t, _, val, rest, err := readElement(body)
		if err != nil {
			return 0, 0, err
		}
		if array {
			vals++
		} else {
			elems++
		}
		if t == bsoncore.TypeEmbeddedDocument || t == bsoncore.TypeArray {
			e, v, err := countTree(val, t == bsoncore.TypeArray, depth+1)
			if err != nil {
				return 0, 0, err
			}
			elems, vals = elems+e, vals+v
		}
		body = rest
	}
	return elems, vals, nil
}

// countTop is countTree of a command's body, leaving out the fields
// repeats will supply.
func countTop(raw []byte, repeats *Repeats) (elems, vals int, err error) {
	body, err := docBody(raw)
	if err != nil {
		return 0, 0, err
	}
	for len(body) > 0 {
		t, key, val, rest, err := readElement(body)
		if err != nil {
			return 0, 0, err
		}
		elems++
		if _, ok := repeats.lookup(t, key, val); !ok && (t == bsoncore.TypeEmbeddedDocument || t == bsoncore.TypeArray) {
			e, v, err := countTree(val, t == bsoncore.TypeArray, 1)
			if err != nil {
				return 0, 0, err
			}
			elems, vals = elems+e, vals+v
		}
		body = rest
	}
	return elems, vals, nil
}

// Repeats remembers the decoded values of a command's top-level fields
// Names, with their bytes: a driver sends its session id (lsid) and the
// cluster time it last saw ($clusterTime) with every command, mostly
// unchanged, so the next command carrying the same bytes shares the
// decoded value instead of decoding it again. The values are shared
// read-only, as decoded strings and binaries are; keep one Repeats per
// connection (it is not safe for concurrent use), so that only commands
// of one client share them. A remembered value keeps the allocation of
// the command it was decoded with alive until it is replaced: a small
// command, as DecodeCommand decodes a big one apart.
type Repeats struct {
	Names [2]string
	seen  [2]repeated
}

type repeated struct {
	raw []byte // the value's bytes, copied
	v   any
}

// maxRepeated is the size of the largest value Repeats remembers.
const maxRepeated = 256

// maxSharedCommand is the size of the largest command (body and document
// sequences, in bytes) that DecodeCommand decodes into one allocation.
const maxSharedCommand = 4 << 10

func (r *Repeats) slot(t bsoncore.Type, key []byte) *repeated {
	if r == nil || t != bsoncore.TypeEmbeddedDocument {
		return nil
	}
	for i, name := range r.Names {
		if name != "" && name == string(key) {
			return &r.seen[i]
		}
	}
	return nil
}

func (r *Repeats) lookup(t bsoncore.Type, key, val []byte) (any, bool) {
	s := r.slot(t, key)
	if s == nil || s.v == nil || !bytes.Equal(s.raw, val) {
		return nil, false
	}
	return s.v, true
}

func (r *Repeats) store(t bsoncore.Type, key, val []byte, v any) {
	if s := r.slot(t, key); s != nil && len(val) <= maxRepeated {
		s.raw, s.v = append(s.raw[:0], val...), v
	}
}

// decoder carves the documents and arrays of one Decode out of elems and
// vals; with own, it gives each an allocation of its own instead.
type decoder struct {
	elems []bson.E
	vals  []any
	own   bool
}

// fields returns a document of n fields with room for extra more.
func (dec *decoder) fields(n, extra int) (bson.D, bool) {
	if dec.own {
		return make(bson.D, n, n+extra), true
	}
	if n+extra > len(dec.elems) {
		return nil, false
	}
	d := bson.D(dec.elems[: n : n+extra])
	dec.elems = dec.elems[n+extra:]
	return d, true
}

// values returns an array of n values.
func (dec *decoder) values(n int) (bson.A, bool) {
	if dec.own {
		return make(bson.A, n), true
	}
	if n > len(dec.vals) {
		return nil, false
	}
	a := bson.A(dec.vals[:n:n])
	dec.vals = dec.vals[n:]
	return a, true
}

func (dec *decoder) doc(raw []byte) (bson.D, error) { return dec.docExtra(raw, 0, nil) }

// docExtra is doc with room for extra more fields, which a caller appends
// without allocating, taking the fields repeats holds from it (a command's
// top level only: countTop did not count them).
func (dec *decoder) docExtra(raw []byte, extra int, repeats *Repeats) (bson.D, error) {
	body, err := docBody(raw)
	if err != nil {
		return nil, err
	}
	n, err := countElements(body)
	if err != nil {
		return nil, err
	}
	if n == 0 && extra == 0 {
		return bson.D{}, nil // never nil: a nil bson.D encodes as null
	}
	d, ok := dec.fields(n, extra)
	if !ok {
		return nil, errMalformed
	}
	for i := range d {
		t, key, val, rest, err := readElement(body)
		if err != nil {
			return nil, err
		}
		v, ok := repeats.lookup(t, key, val)
		if !ok {
			if v, err = dec.value(t, val); err != nil {
				return nil, err
			}
			repeats.store(t, key, val, v)
		}
		d[i] = bson.E{Key: internKey(key), Value: v}
		body = rest
	}
	return d, nil
}

func (dec *decoder) array(raw []byte) (bson.A, error) {
	body, err := docBody(raw)
	if err != nil {
		return nil, err
	}
	n, err := countElements(body)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return bson.A{}, nil // never nil: a nil bson.A encodes as null
	}
	a, ok := dec.values(n)
	if !ok {
		return nil, errMalformed
	}
	for i := range a {
		t, _, val, rest, err := readElement(body)
		if err != nil {
			return nil, err
		}
		if a[i], err = dec.value(t, val); err != nil {
			return nil, err
		}
		body = rest
	}
	return a, nil
}

// countElements counts the elements of a document body, so that the
// bson.D is allocated once.
func countElements(body []byte) (int, error) {
	n := 0
	for len(body) > 0 {
		_, _, _, rest, err := readElement(body)
		if err != nil {
			return 0, err
		}
		body = rest
		n++
	}
	return n, nil
}

// readElement splits the first element off body: its type, key, value
// bytes and the rest.
func readElement(body []byte) (t bsoncore.Type, key, val, rest []byte, err error) {
	if len(body) < 2 {
		return 0, nil, nil, nil, errMalformed
	}
	t = bsoncore.Type(body[0])
	end := 1
	for end < len(body) && body[end] != 0 {
		end++
	}
	if end == len(body) {
		return 0, nil, nil, nil, errMalformed
	}
	key, body = body[1:end], body[end+1:]
	n, ok := valueLen(t, body)
	if !ok || n > len(body) {
		return 0, nil, nil, nil, errMalformed
	}
	return t, key, body[:n], body[n:], nil
}

// valueLen returns the length of the value of type t at the start of src.
func valueLen(t bsoncore.Type, src []byte) (int, bool) {
	prefixed := func(extra int) (int, bool) {
		if len(src) < 4 {
			return 0, false
		}
		n := int(int32(binary.LittleEndian.Uint32(src)))
		if n < 0 {
			return 0, false
		}
		return n + extra, true
	}
	cstring := func(from int) (int, bool) {
		for i := from; i < len(src); i++ {
			if src[i] == 0 {
				return i + 1, true
			}
		}
		return 0, false
	}
	switch t {
	case bsoncore.TypeDouble, bsoncore.TypeDateTime, bsoncore.TypeInt64, bsoncore.TypeTimestamp:
		return 8, true
	case bsoncore.TypeString, bsoncore.TypeJavaScript, bsoncore.TypeSymbol:
		return prefixed(4)
	case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray, bsoncore.TypeCodeWithScope:
		return prefixed(0)
	case bsoncore.TypeBinary:
		return prefixed(5)
	case bsoncore.TypeUndefined, bsoncore.TypeNull, bsoncore.TypeMinKey, bsoncore.TypeMaxKey:
		return 0, true
	case bsoncore.TypeObjectID:
		return 12, true
	case bsoncore.TypeBoolean:
		return 1, true
	case bsoncore.TypeRegex:
		n, ok := cstring(0)
		if !ok {
			return 0, false
		}
		return cstring(n)
	case bsoncore.TypeDBPointer:
		n, ok := prefixed(4)
		return n + 12, ok
	case bsoncore.TypeInt32:
		return 4, true
	case bsoncore.TypeDecimal128:
		return 16, true
	}
	return 0, false
}

// value converts one value, whose bytes val holds exactly.
func (dec *decoder) value(t bsoncore.Type, val []byte) (any, error) {
	switch t {
	case bsoncore.TypeDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(val)), nil
	case bsoncore.TypeString:
		return readStringValue(val)
	case bsoncore.TypeEmbeddedDocument:
		return dec.doc(val)
	case bsoncore.TypeArray:
		return dec.array(val)
	case bsoncore.TypeBinary:
		// val is length, subtype, data; the old subtype 2 repeats the
		// length inside the data, which the driver strips.
		n := int(int32(binary.LittleEndian.Uint32(val)))
		sub, data := val[4], val[5:]
		if sub == bson.TypeBinaryBinaryOld && n > 4 {
			if int(int32(binary.LittleEndian.Uint32(data))) != n-4 {
				return nil, errMalformed
			}
			data = data[4:]
		}
		return binaryValue(sub, data), nil
	case bsoncore.TypeObjectID:
		var id bson.ObjectID
		copy(id[:], val)
		return id, nil
	case bsoncore.TypeBoolean:
		switch val[0] {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, errMalformed
	case bsoncore.TypeDateTime:
		return bson.DateTime(int64(binary.LittleEndian.Uint64(val))), nil
	case bsoncore.TypeNull:
		return nil, nil
	case bsoncore.TypeInt32:
		return int32Value(int32(binary.LittleEndian.Uint32(val))), nil
	case bsoncore.TypeTimestamp:
		return bson.Timestamp{I: binary.LittleEndian.Uint32(val), T: binary.LittleEndian.Uint32(val[4:])}, nil
	case bsoncore.TypeInt64:
		return int64(binary.LittleEndian.Uint64(val)), nil
	case bsoncore.TypeDecimal128:
		lo := binary.LittleEndian.Uint64(val)
		hi := binary.LittleEndian.Uint64(val[8:])
		return bson.NewDecimal128(hi, lo), nil
	case bsoncore.TypeMinKey:
		return bson.MinKey{}, nil
	case bsoncore.TypeMaxKey:
		return bson.MaxKey{}, nil
	case bsoncore.TypeUndefined:
		return bson.Undefined{}, nil
	}
	// Rare types (regex, symbol, JavaScript, code with scope, DBPointer):
	// the driver's decoding is the definition.
	return decodeRare(t, val)
}

// stringBytes returns the bytes of the length-prefixed, NUL-terminated
// string that fills val.
func stringBytes(val []byte) ([]byte, bool) {
	if len(val) < 5 {
		return nil, false
	}
	n := int(int32(binary.LittleEndian.Uint32(val)))
	if n <= 0 || n != len(val)-4 || val[len(val)-1] != 0 {
		return nil, false
	}
	return val[4 : len(val)-1], true
}

func decodeRare(t bsoncore.Type, val []byte) (any, error) {
	doc := make([]byte, 0, len(val)+8)
	doc = append(doc, 0, 0, 0, 0, byte(t), 'v', 0)
	doc = append(doc, val...)
	doc = append(doc, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil || len(d) != 1 {
		return nil, errMalformed
	}
	return d[0].Value, nil
}

// internKey returns key as a string, without allocating for the field
// names that commands carry on every request, nor, most of the time, for
// the short ones seen lately.
func internKey(key []byte) string {
	if s, ok := commonKeys[string(key)]; ok {
		return s
	}
	return keyCache.get(key)
}

var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range strings.Fields(`_id $db lsid id txnNumber autocommit startTransaction
		$clusterTime clusterTime signature hash keyId $readPreference mode readConcern level
		afterClusterTime writeConcern w j wtimeout maxTimeMS comment
		insert documents ordered bypassDocumentValidation
		update updates q u upsert multi arrayFilters hint collation
		delete deletes limit
		find filter sort projection skip batchSize singleBatch
		getMore collection cursor firstBatch nextBatch ns
		findAndModify remove new fields
		aggregate pipeline allowDiskUse let explain
		count distinct key query
		commitTransaction abortTransaction recoveryToken
		killCursors cursors endSessions ping hello isMaster helloOk
		$set $inc $unset $push $pull $addToSet $setOnInsert $min $max $mul $rename $each
		$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not $nor $elemMatch
		$match $group $project $sort $limit $skip $unwind $lookup $sum $count
		name key unique v n nModified ok errmsg code codeName writeErrors index
		createIndexes indexes listIndexes listCollections create drop`) {
		m[k] = k
	}
	return m
}()

// Marshal returns d as BSON, the same bytes bson.Marshal returns.
func Marshal(d bson.D) ([]byte, error) {
	return AppendDocument(make([]byte, 0, 256), d)
}

var sizeBufs = sync.Pool{New: func() any { return new([]byte) }}

// Size returns the length of d as BSON, as len of bson.Marshal's result.
func Size(d bson.D) (int, error) {
	bp := sizeBufs.Get().(*[]byte)
	b, err := AppendDocument((*bp)[:0], d)
	n := len(b)
	if cap(b) <= 64<<10 {
		*bp = b
		sizeBufs.Put(bp)
	}
	return n, err
}

// AppendDocument appends d as BSON to dst: the bytes bson.Marshal(d)
// returns. Values of types other than those of the package comment (Go
// ints, maps, structs, regexes...) are encoded by the driver.
func AppendDocument(dst []byte, d bson.D) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, e := range d {
		var err error
		if dst, err = appendElement(dst, e.Key, e.Value); err != nil {
			return dst[:start], err
		}
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}

func appendArray(dst []byte, a bson.A) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	var key [20]byte
	for i, v := range a {
		var err error
		if dst, err = appendElementKey(dst, appendIndex(key[:0], i), v); err != nil {
			return dst[:start], err
		}
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}

func appendIndex(dst []byte, i int) []byte {
	if i < 10 {
		return append(dst, byte('0'+i))
	}
	var buf [20]byte
	p := len(buf)
	for i > 0 {
		p--
		buf[p] = byte('0' + i%10)
		i /= 10
	}
	return append(dst, buf[p:]...)
}

var errKeyNUL = errors.New("BSON element key cannot contain null bytes")

func appendElement(dst []byte, key string, v any) ([]byte, error) {
	if strings.IndexByte(key, 0) >= 0 {
		return dst, errKeyNUL
	}
	return appendElementKey(dst, []byte(key), v)
}

// appendElementKey appends one element; key holds no NUL.
func appendElementKey(dst []byte, key []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return appendHeader(dst, bsoncore.TypeNull, key), nil
	case string:
		return bsoncore.AppendString(appendHeader(dst, bsoncore.TypeString, key), x), nil
	case int32:
		return bsoncore.AppendInt32(appendHeader(dst, bsoncore.TypeInt32, key), x), nil
	case int64:
		return bsoncore.AppendInt64(appendHeader(dst, bsoncore.TypeInt64, key), x), nil
	case float64:
		return bsoncore.AppendDouble(appendHeader(dst, bsoncore.TypeDouble, key), x), nil
	case bool:
		return bsoncore.AppendBoolean(appendHeader(dst, bsoncore.TypeBoolean, key), x), nil
	case bson.D:
		if x != nil {
			start := len(dst)
			out, err := AppendDocument(appendHeader(dst, bsoncore.TypeEmbeddedDocument, key), x)
			if err != nil {
				return dst[:start], err
			}
			return out, nil
		}
	case bson.A:
		if x != nil {
			start := len(dst)
			out, err := appendArray(appendHeader(dst, bsoncore.TypeArray, key), x)
			if err != nil {
				return dst[:start], err
			}
			return out, nil
		}
	case bson.ObjectID:
		return append(appendHeader(dst, bsoncore.TypeObjectID, key), x[:]...), nil
	case bson.DateTime:
		return bsoncore.AppendDateTime(appendHeader(dst, bsoncore.TypeDateTime, key), int64(x)), nil
	case bson.Timestamp:
		return bsoncore.AppendTimestamp(appendHeader(dst, bsoncore.TypeTimestamp, key), x.T, x.I), nil
	case bson.Binary:
		return bsoncore.AppendBinary(appendHeader(dst, bsoncore.TypeBinary, key), x.Subtype, x.Data), nil
	case bson.Decimal128:
		hi, lo := x.GetBytes()
		return bsoncore.AppendDecimal128(appendHeader(dst, bsoncore.TypeDecimal128, key), hi, lo), nil
	case bson.MinKey:
		return appendHeader(dst, bsoncore.TypeMinKey, key), nil
	case bson.MaxKey:
		return appendHeader(dst, bsoncore.TypeMaxKey, key), nil
	case bson.Undefined:
		return appendHeader(dst, bsoncore.TypeUndefined, key), nil
	}
	// Everything else, nil documents and arrays included, as the driver
	// encodes it.
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		return dst, err
	}
	return append(appendHeader(dst, bsoncore.Type(t), key), b...), nil
}

func appendHeader(dst []byte, t bsoncore.Type, key []byte) []byte {
	dst = append(dst, byte(t))
	dst = append(dst, key...)
	return append(dst, 0)
}
