//go:build !unix

package output

// oNoFollow: no O_NOFOLLOW here; NewFileSender's Lstat check alone refuses
// a symbolic link (dtrelay's appliance runs Linux).
const oNoFollow = 0
