//! Which namespaces the operator watches: all of them, or a list (one watch each).
use kube::{Api, Client, Resource};

/// Which namespaces the operator watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (one cluster-wide watch per kind; needs cluster-wide RBAC).
    All,
    /// These namespaces only (one watch each, so namespaced RBAC is enough).
    Namespaces(Vec<String>),
}

impl Scope {
    /// All namespaces for an empty list, else the listed ones (duplicates dropped).
    pub fn of(namespaces: &[String]) -> Scope {
        let mut list: Vec<String> = namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        list.sort();
        list.dedup();
        if list.is_empty() {
            Scope::All
        } else {
            Scope::Namespaces(list)
        }
    }

    /// One Api per watch: all namespaces, or one per listed namespace.
    pub(crate) fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match self {
            Scope::All => vec![Api::all(client.clone())],
            Scope::Namespaces(list) => list
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect(),
        }
    }
}
