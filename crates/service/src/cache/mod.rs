//! The hot path's memory: bounded caches of what every token fetch and proxied call reads, and the
//! change feed that drops entries another instance changed.

pub(crate) mod change_feed;
pub(crate) mod hot_cache;
