//go:build !unix

package forward

// oNoFollow: no O_NOFOLLOW here; NewFileSender's Lstat check alone refuses
// a symbolic link (dtrelay's appliance runs Linux).
const oNoFollow = 0
