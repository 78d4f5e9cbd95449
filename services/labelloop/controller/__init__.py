"""Round controller: runs active-learning experiments round by round and survives restarts."""
