//! Connecting an account: a connect session lets one end user authorize one provider; the
//! provider's redirect comes back to the callback, which stores the grant. Installs that start
//! at the provider (Aircall's dashboard) are held until the app claims them.

pub(crate) mod callback;
pub(crate) mod installs;
pub(crate) mod sessions;
