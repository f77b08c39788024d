"""Runtime kit shared by every service; imports only `contracts`."""
