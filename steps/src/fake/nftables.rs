//! [`crate::kernel::Nftables`] on the fake kernel: in memory, every call recorded and failable.

use super::{einval, label, FakeKernel, EEXIST, ENOENT};
use crate::kernel::Nftables;
use crate::kernel::{KernelError, Netns, NftTable};

impl Nftables for FakeKernel {
    fn nft_apply(&mut self, ns: &Netns, script: &str) -> Result<(), KernelError> {
        let first = script.lines().next().unwrap_or("");
        self.call(format!("nft_apply {} {first}", label(ns)))?;
        self.check_ns(ns)?;
        let words: Vec<&str> = first.split_whitespace().collect();
        match words.as_slice() {
            ["create", "table", family, name] => {
                let key = (
                    ns.clone(),
                    NftTable {
                        family: family.to_string(),
                        name: name.to_string(),
                    },
                );
                if self.state.nft.contains_key(&key) {
                    return Err(KernelError::from_errno(EEXIST, None));
                }
                self.state.nft.insert(key, script.to_string());
                Ok(())
            }
            ["delete", "table", family, name] => {
                let key = (
                    ns.clone(),
                    NftTable {
                        family: family.to_string(),
                        name: name.to_string(),
                    },
                );
                self.state
                    .nft
                    .remove(&key)
                    .map(drop)
                    .ok_or_else(|| KernelError::from_errno(ENOENT, None))
            }
            _ => Err(einval()),
        }
    }

    fn nft_tables(&mut self, ns: &Netns) -> Result<Vec<NftTable>, KernelError> {
        self.call(format!("nft_tables {}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .nft
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, t)| t.clone())
            .collect())
    }
}
