package initd

import "errors"

var errGaveUp = errors.New("initd: the daemon keeps dying")
