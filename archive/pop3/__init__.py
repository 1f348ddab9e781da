"""POP3: the archiving client and a scriptable fake server for tests and the demo."""
