// Package nilcheck holds the one check that Options.Validate methods need
// now that their dependencies are interfaces: an interface holding a nil
// pointer (the nil *projections.View of a read-only core, a nil
// *eventlog.Log) is not == nil, and without the check the first request
// would panic instead of Validate refusing the options. It imports only the
// standard library.
package nilcheck

import "reflect"

// IsNil reports whether v is nil or holds a nil pointer.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
