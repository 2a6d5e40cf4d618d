//! The portal's pages for what an app runs with once set up: webhook endpoints and their
//! deliveries, managed secrets, policies, agents with their delegations and keys, approvals
//! waiting, and the vault's key ring.
