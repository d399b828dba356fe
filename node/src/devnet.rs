pub fn run(_nodes: u8) -> anyhow::Result<()> {
    anyhow::bail!("devnet: not yet")
}
