//! Compiles `proto/kmon.proto` (client API) and `proto/controller.proto`
//! (internal controller quorum) and `proto/replication.proto` (internal data
//! path and broker lifecycle) and `proto/agent.proto` (node agents shipping
//! samples) with protox (pure Rust): no `protoc` needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["kmon.proto", "controller.proto", "replication.proto", "agent.proto"], ["proto"])?;
    // `bytes` fields become `bytes::Bytes`: record batches pass through without copies.
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
