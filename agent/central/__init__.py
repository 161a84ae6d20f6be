"""tcs-central: the reference provincial console."""
