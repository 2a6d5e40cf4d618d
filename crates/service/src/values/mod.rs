//! Small value types and request-input readers that every flow shares: ids, timestamps, page
//! sizes, URLs, numbers and objects in JSON bodies, random secrets and their hashes.

pub(crate) mod ids;
pub(crate) mod json_objects;
pub(crate) mod paging;
pub(crate) mod secrets;
pub(crate) mod timestamp;
pub(crate) mod urls;
pub(crate) mod whole_numbers;
