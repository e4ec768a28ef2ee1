//! pgxc-storage (being written).
