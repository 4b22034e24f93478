//! hermes-s6: the unprivileged half.
