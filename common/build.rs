//! Generates the protobuf messages and gRPC stubs of `proto/strata.proto`.

// protox compiles the .proto in pure Rust, so a build needs no protoc on the machine.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/strata.proto");
    let fds = protox::compile(["proto/strata.proto"], ["proto"])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
