"""Early signals of a crash in progress, besides the dump itself: fence_kdump's "kdump has
started" messages, the serial console, and the BMC's own event logs."""
