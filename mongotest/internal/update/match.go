package update

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// wrapKey names the field an element is wrapped in so that a query
// condition such as {$gte: 6} can be matched against it.
const wrapKey = "v"

// pathOperators are the query operators that apply to a field's value, as
// opposed to top-level ones such as $and. A $pull argument starting with
// one is a condition on each element itself.
var pathOperators = map[string]bool{
	"$eq": true, "$ne": true, "$gt": true, "$gte": true, "$lt": true, "$lte": true,
	"$in": true, "$nin": true, "$exists": true, "$type": true, "$mod": true,
	"$regex": true, "$options": true, "$elemMatch": true, "$size": true, "$all": true,
	"$not": true, "$bitsAllSet": true, "$bitsAllClear": true, "$bitsAnySet": true,
	"$bitsAnyClear": true, "$geoWithin": true, "$geoIntersects": true, "$near": true,
	"$nearSphere": true, "$within": true,
}

// pullMatcher mirrors the server's three $pull matchers: a query over
// document elements, a condition on each element, or plain equality.
func pullMatcher(arg any) (func(any) bool, error) {
	switch v := arg.(type) {
	case bson.D:
		if len(v) > 0 && pathOperators[v[0].Key] {
			return wrappedMatcher(wrapKey, arg)
		}
		f, err := query.Compile(v)
		if err != nil {
			return nil, err
		}
		return func(x any) bool {
			d, ok := x.(bson.D)
			return ok && f.Match(d)
		}, nil
	case bson.Regex:
		return wrappedMatcher(wrapKey, arg)
	}
	return func(x any) bool { return bsonkit.Equal(x, arg) }, nil
}

func wrappedMatcher(key string, cond any) (func(any) bool, error) {
	f, err := query.Compile(bson.D{{Key: key, Value: cond}})
	if err != nil {
		return nil, err
	}
	return func(x any) bool { return f.Match(bson.D{{Key: key, Value: x}}) }, nil
}

// compileArrayFilter returns the identifier an array filter binds and its
// matcher, which sees each array element as the identifier's value.
func compileArrayFilter(filter bson.D) (string, func(any) bool, error) {
	if len(filter) == 0 {
		return "", nil, merr.New(merr.FailedToParse, "Cannot use an expression without a top-level field name in arrayFilters")
	}
	var id string
	for _, e := range filter {
		top, _, _ := strings.Cut(e.Key, ".")
		if strings.HasPrefix(top, "$") {
			return "", nil, merr.New(merr.FailedToParse, "Cannot use an expression without a top-level field name in arrayFilters")
		}
		if id != "" && top != id {
			return "", nil, merr.New(merr.FailedToParse,
				"Error parsing array filter :: caused by :: Expected a single top-level field name, found '%s' and '%s'", id, top)
		}
		id = top
	}
	f, err := query.Compile(filter)
	if err != nil {
		return "", nil, err
	}
	return id, func(x any) bool { return f.Match(bson.D{{Key: id, Value: x}}) }, nil
}
