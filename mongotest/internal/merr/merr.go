// Package merr is MongoDB's server error model: numeric codes, their
// codeNames and error labels, as the server puts them in a reply.
package merr

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Server error codes used by mongotest, with MongoDB's numbers.
const (
	InternalError                      int32 = 1
	BadValue                           int32 = 2
	NoSuchKey                          int32 = 4
	FailedToParse                      int32 = 9
	TypeMismatch                       int32 = 14
	Unauthorized                       int32 = 13
	IllegalOperation                   int32 = 20
	APIVersionError                    int32 = 322
	APIStrictError                     int32 = 323
	ConflictingOperationInProgress     int32 = 117
	InvalidPipelineOperator            int32 = 168
	WriteConcernFailed                 int32 = 64
	InvalidBSON                        int32 = 22
	NamespaceNotFound                  int32 = 26
	IndexNotFound                      int32 = 27
	AmbiguousIndexKeyPattern           int32 = 181
	CannotConvertIndexToUnique         int32 = 359
	PathNotViable                      int32 = 28
	ConflictingUpdateOperators         int32 = 40
	CursorNotFound                     int32 = 43
	NamespaceExists                    int32 = 48
	MaxTimeMSExpired                   int32 = 50
	DollarPrefixedFieldName            int32 = 52
	EmptyFieldName                     int32 = 56
	InvalidIdField                     int32 = 53
	NotSingleValueField                int32 = 54
	CommandNotFound                    int32 = 59
	ImmutableField                     int32 = 66
	CannotCreateIndex                  int32 = 67
	IndexAlreadyExists                 int32 = 68
	InvalidOptions                     int32 = 72
	InvalidNamespace                   int32 = 73
	IndexOptionsConflict               int32 = 85
	IndexKeySpecsConflict              int32 = 86
	WriteConflict                      int32 = 112
	CommandFailed                      int32 = 125
	NoSuchSession                      int32 = 206
	IncompleteTransactionHistory       int32 = 217
	TransactionTooOld                  int32 = 225
	SnapshotTooOld                     int32 = 239
	NoSuchTransaction                  int32 = 251
	TransactionCommitted               int32 = 256
	TransactionTooLarge                int32 = 257
	OperationNotSupportedInTransaction int32 = 263
	ExceededTimeLimit                  int32 = 262
	Interrupted                        int32 = 11601
	DuplicateKey                       int32 = 11000
	NotWritablePrimary                 int32 = 10107
	Location40352                      int32 = 40352
	ObjectIsBusy                       int32 = 314
	BSONObjectTooLarge                 int32 = 10334
	UnknownError                       int32 = 8
	InvalidLength                      int32 = 16
	Overflow                           int32 = 15
	Location15974                      int32 = 15974
	Location17419                      int32 = 17419
	Location40571                      int32 = 40571
	Location40415                      int32 = 40415
	NotImplemented                     int32 = 238
	UnsupportedOpQueryCommand          int32 = 352
	UnknownReplWriteConcern            int32 = 79
	UnsatisfiableCommitQuorum          int32 = 278
	ChecksumMismatch                   int32 = 288
	UnsatisfiableWriteConcern          int32 = 100
	DocumentValidationFailure          int32 = 121
	ViewDepthLimitExceeded             int32 = 165
	ViewPipelineMaxSizeExceeded        int32 = 195
	OptionNotSupportedOnView           int32 = 167
	GraphContainsCycle                 int32 = 5
	CommandNotSupportedOnView          int32 = 166
	MergeStageNoMatchingDocument       int32 = 13113
	QueryFeatureNotAllowed             int32 = 224
	IllegalOpMsgFlag                   int32 = 223
	TooManyDocumentSequences           int32 = 233
	NotExactValueField                 int32 = 111
	NotARetryableWriteCommand          int32 = 50768
)

var names = map[int32]string{
	InternalError:                      "InternalError",
	QueryFeatureNotAllowed:             "QueryFeatureNotAllowed",
	IllegalOpMsgFlag:                   "IllegalOpMsgFlag",
	TooManyDocumentSequences:           "TooManyDocumentSequences",
	NotExactValueField:                 "NotExactValueField",
	NotARetryableWriteCommand:          "NotARetryableWriteCommand",
	BadValue:                           "BadValue",
	NoSuchKey:                          "NoSuchKey",
	FailedToParse:                      "FailedToParse",
	ChecksumMismatch:                   "ChecksumMismatch",
	TypeMismatch:                       "TypeMismatch",
	Unauthorized:                       "Unauthorized",
	IllegalOperation:                   "IllegalOperation",
	APIVersionError:                    "APIVersionError",
	APIStrictError:                     "APIStrictError",
	ConflictingOperationInProgress:     "ConflictingOperationInProgress",
	InvalidPipelineOperator:            "InvalidPipelineOperator",
	WriteConcernFailed:                 "WriteConcernFailed",
	InvalidBSON:                        "InvalidBSON",
	NamespaceNotFound:                  "NamespaceNotFound",
	IndexNotFound:                      "IndexNotFound",
	AmbiguousIndexKeyPattern:           "AmbiguousIndexKeyPattern",
	CannotConvertIndexToUnique:         "CannotConvertIndexToUnique",
	PathNotViable:                      "PathNotViable",
	ConflictingUpdateOperators:         "ConflictingUpdateOperators",
	CursorNotFound:                     "CursorNotFound",
	NamespaceExists:                    "NamespaceExists",
	MaxTimeMSExpired:                   "MaxTimeMSExpired",
	DollarPrefixedFieldName:            "DollarPrefixedFieldName",
	EmptyFieldName:                     "EmptyFieldName",
	InvalidIdField:                     "InvalidIdField",
	NotSingleValueField:                "NotSingleValueField",
	CommandNotFound:                    "CommandNotFound",
	ImmutableField:                     "ImmutableField",
	CannotCreateIndex:                  "CannotCreateIndex",
	IndexAlreadyExists:                 "IndexAlreadyExists",
	InvalidOptions:                     "InvalidOptions",
	InvalidNamespace:                   "InvalidNamespace",
	IndexOptionsConflict:               "IndexOptionsConflict",
	IndexKeySpecsConflict:              "IndexKeySpecsConflict",
	WriteConflict:                      "WriteConflict",
	CommandFailed:                      "CommandFailed",
	NoSuchSession:                      "NoSuchSession",
	IncompleteTransactionHistory:       "IncompleteTransactionHistory",
	TransactionTooOld:                  "TransactionTooOld",
	SnapshotTooOld:                     "SnapshotTooOld",
	NoSuchTransaction:                  "NoSuchTransaction",
	TransactionCommitted:               "TransactionCommitted",
	TransactionTooLarge:                "TransactionTooLarge",
	OperationNotSupportedInTransaction: "OperationNotSupportedInTransaction",
	ExceededTimeLimit:                  "ExceededTimeLimit",
	Interrupted:                        "Interrupted",
	DuplicateKey:                       "DuplicateKey",
	NotWritablePrimary:                 "NotWritablePrimary",
	ObjectIsBusy:                       "ObjectIsBusy",
	BSONObjectTooLarge:                 "BSONObjectTooLarge",
	UnknownError:                       "UnknownError",
	InvalidLength:                      "InvalidLength",
	Overflow:                           "Overflow",
	NotImplemented:                     "NotImplemented",
	UnsupportedOpQueryCommand:          "UnsupportedOpQueryCommand",
	UnknownReplWriteConcern:            "UnknownReplWriteConcern",
	UnsatisfiableCommitQuorum:          "UnsatisfiableCommitQuorum",
	UnsatisfiableWriteConcern:          "UnsatisfiableWriteConcern",
	DocumentValidationFailure:          "DocumentValidationFailure",
	ViewDepthLimitExceeded:             "ViewDepthLimitExceeded",
	ViewPipelineMaxSizeExceeded:        "ViewPipelineMaxSizeExceeded",
	OptionNotSupportedOnView:           "OptionNotSupportedOnView",
	GraphContainsCycle:                 "GraphContainsCycle",
	CommandNotSupportedOnView:          "CommandNotSupportedOnView",
	MergeStageNoMatchingDocument:       "MergeStageNoMatchingDocument",
	HostUnreachable:                    "HostUnreachable",
	HostNotFound:                       "HostNotFound",
	NetworkTimeout:                     "NetworkTimeout",
	ShutdownInProgress:                 "ShutdownInProgress",
	PrimarySteppedDown:                 "PrimarySteppedDown",
	LockTimeout:                        "LockTimeout",
	SnapshotUnavailable:                "SnapshotUnavailable",
	PreparedTransactionInProgress:      "PreparedTransactionInProgress",
	SocketException:                    "SocketException",
	InterruptedAtShutdown:              "InterruptedAtShutdown",
	InterruptedDueToReplStateChange:    "InterruptedDueToReplStateChange",
	NotPrimaryNoSecondaryOk:            "NotPrimaryNoSecondaryOk",
	NotPrimaryOrSecondary:              "NotPrimaryOrSecondary",
}

// Name returns MongoDB's codeName for code, or "" for location codes.
func Name(code int32) string {
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("Location%d", code)
}

// Error is a server error as a command reply carries it.
type Error struct {
	Code   int32
	Msg    string
	Labels []string
	// Extra fields appended to the reply (keyPattern, keyValue, ...).
	Extra bson.D
}

// New returns an Error with a formatted message.
func New(code int32, format string, args ...any) *Error {
	if len(args) == 0 {
		return &Error{Code: code, Msg: format}
	}
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", Name(e.Code), e.Code, e.Msg) }

// WithLabels returns e with labels added.
func (e *Error) WithLabels(labels ...string) *Error {
	e.Labels = append(e.Labels, labels...)
	return e
}

// HasLabel reports whether e carries label.
func (e *Error) HasLabel(label string) bool {
	for _, l := range e.Labels {
		if l == label {
			return true
		}
	}
	return false
}

// Doc renders e as a failed command reply: {ok: 0, errmsg, code, codeName, ...}.
func (e *Error) Doc() bson.D {
	d := bson.D{
		{Key: "ok", Value: 0.0},
		{Key: "errmsg", Value: e.Msg},
		{Key: "code", Value: e.Code},
		{Key: "codeName", Value: Name(e.Code)},
	}
	d = append(d, e.Extra...)
	if len(e.Labels) > 0 {
		labels := make(bson.A, len(e.Labels))
		for i, l := range e.Labels {
			labels[i] = l
		}
		d = append(d, bson.E{Key: "errorLabels", Value: labels})
	}
	return d
}
