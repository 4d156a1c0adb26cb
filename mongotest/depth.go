package mongotest

import "encoding/binary"

// maxBSONDepth is MongoDB's maxBSONDepth: validateBSON refuses to open a
// document or array while this many are open (the outermost document
// counts), so a message's documents nest at most maxBSONDepth+1 levels.
const maxBSONDepth = 200

// tooDeep reports whether doc nests documents and arrays (code with scope
// included) deeper than validateBSON allows. It walks the bytes without
// recursion and stops at the first level too deep, so that the recursive
// validation and decoding that follow never see a deep document: their
// stack stays bounded whatever a client sends. Malformed BSON is not its
// business: it answers false and lets the validation report it.
func tooDeep(doc []byte) bool {
	ends := make([]int, 0, 16) // end offset of each open document
	pos := 0
	open := func() bool { // a document starts at pos
		if len(ends) > maxBSONDepth {
			return false
		}
		if pos+5 > len(doc) {
			return false
		}
		n := int(int32(binary.LittleEndian.Uint32(doc[pos:])))
		if n < 5 || pos+n > len(doc) {
			return false
		}
		ends = append(ends, pos+n)
		pos += 4
		return true
	}
	if !open() {
		return false
	}
	for len(ends) > 0 {
		if pos >= len(doc) {
			return false
		}
		t := doc[pos]
		if t == 0 { // end of the innermost document
			pos++
			ends = ends[:len(ends)-1]
			continue
		}
		pos++
		if !skipCString(doc, &pos) {
			return false
		}
		var size int
		switch t {
		case 0x03, 0x04: // document, array
			if len(ends) > maxBSONDepth {
				return true
			}
			if !open() {
				return false
			}
			continue
		case 0x0F: // code with scope: total length, code string, scope document
			if len(ends) > maxBSONDepth {
				return true
			}
			if pos+8 > len(doc) {
				return false
			}
			pos += 4
			n := int(int32(binary.LittleEndian.Uint32(doc[pos:])))
			if n < 1 || pos+4+n > len(doc) {
				return false
			}
			pos += 4 + n
			if !open() {
				return false
			}
			continue
		case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
			size = 8
		case 0x02, 0x0D, 0x0E: // string, JavaScript, symbol
			size = lengthPrefixed(doc, pos, 4)
		case 0x05: // binary: length, subtype, bytes
			size = lengthPrefixed(doc, pos, 5)
		case 0x06, 0x0A, 0x7F, 0xFF: // undefined, null, maxKey, minKey
		case 0x07: // ObjectId
			size = 12
		case 0x08: // bool
			size = 1
		case 0x0B: // regex: pattern and options
			for range 2 {
				if !skipCString(doc, &pos) {
					return false
				}
			}
		case 0x0C: // DBPointer: string, ObjectId
			size = lengthPrefixed(doc, pos, 4)
			if size >= 0 {
				size += 12
			}
		case 0x10: // int32
			size = 4
		case 0x13: // decimal128
			size = 16
		default:
			return false
		}
		if size < 0 || pos+size > len(doc) {
			return false
		}
		pos += size
	}
	return false
}

// skipCString moves *pos past a NUL-terminated string.
func skipCString(doc []byte, pos *int) bool {
	for i := *pos; i < len(doc); i++ {
		if doc[i] == 0 {
			*pos = i + 1
			return true
		}
	}
	return false
}

// lengthPrefixed is the size of a value made of a header (an int32 length
// and, for binary, a subtype byte) and as many bytes as that length says;
// -1 when malformed.
func lengthPrefixed(doc []byte, pos, header int) int {
	if pos+4 > len(doc) {
		return -1
	}
	n := int(int32(binary.LittleEndian.Uint32(doc[pos:])))
	if n < 0 {
		return -1
	}
	return header + n
}
