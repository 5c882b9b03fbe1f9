//! Interactive dialogs (spec §8): opening one for the user a trigger id names,
//! validating it strictly, and sending its submissions and lookups to the
//! integration (through the `interactive` export, like clicks).

pub mod model;
pub mod open;
pub mod submit;
pub mod validate;

pub use open::open;
