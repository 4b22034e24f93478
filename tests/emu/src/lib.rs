//! Container emulation for integration tests.
