//! Host-side bindings of the `switchboard` world. Every import is async so a
//! host call (above all egress) never blocks the server's threads.

wasmtime::component::bindgen!({
    world: "switchboard",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use switchboard::plugin::types;
