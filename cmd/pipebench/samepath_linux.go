package main

// copyDefers reports whether pipe.Copy hands a copy along p to io.Copy
// whole, so that the rows "Copy p" and "io.Copy p" take the same path and
// differ only by noise. It restates, for the ends the rows use, the rule in
// pipe.Copy's doc (copy_linux.go's route decides it): Copy splices from a
// pipe into another pipe or /dev/null and from a regular file into a pipe;
// a pipe into a regular file is io.Copy's, and so is every pairing without
// a pipe, since splice(2) needs one. TestSamePathIsCopys checks each
// pairing against what Copy does.
func copyDefers(p copyPath) bool {
	switch {
	case p.from == endPipe && p.to == endFile:
		return true // as fast or faster with read and write (pipe.Copy's doc)
	case p.from == endPipe || p.to == endPipe:
		return false // splices
	}
	return true // no pipe: nothing to splice through
}
