//! [`forward_backend!`](crate::forward_backend): the pass-through methods of a wrapper's
//! `StorageBackend` implementation, written once.

/// Implements [`StorageBackend`](vaultdb_core::StorageBackend) for a wrapper around another
/// backend, writing for it the methods that only pass the call on, so that the wrapper
/// writes by hand just the methods that do something else.
///
/// The block holds one `forward` line, then the hand-written methods as in any
/// `#[async_trait]` implementation:
///
/// - `forward id, name, delete to self.inner;` writes the methods named (any of `id`,
///   `name`, `put`, `get`, `delete`, `list_page`), each calling the same method of the
///   backend in the named field (`self.inner`, or `self.0` in a tuple struct) with the same
///   arguments.
/// - `forward ... to self.inner after self.admit;` also awaits `self.admit(op)` before each
///   forwarded operation (`op` is the [`Ops`](crate::Ops) value of `put`, `get`, `delete` or
///   `list_page`; never for `id` and `name`); `admit` is an
///   `async fn(&self, Ops) -> Result<(), BackendError>`, and its error is returned without
///   calling the wrapped backend.
///
/// Every method of the trait must be either forwarded or written in the block.
///
/// ```
/// use vaultdb_core::backend::{BackendError, Key};
/// use vaultdb_core::{MemoryBackend, PutMode, StorageBackend};
///
/// /// Deletes nothing, and says it did.
/// #[derive(Debug)]
/// struct KeepsEverything<B>(B);
///
/// vaultdb_testkit::forward_backend! {
///     impl<B: StorageBackend> StorageBackend for KeepsEverything<B> {
///         forward id, name, put, get, list_page to self.0;
///
///         async fn delete(&self, _key: &Key) -> Result<(), BackendError> {
///             Ok(())
///         }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let backend = KeepsEverything(MemoryBackend::new("m", "memory"));
/// let key = Key::new("k").unwrap();
/// backend.put(&key, "v".into(), PutMode::Create).await.unwrap();
/// backend.delete(&key).await.unwrap();
/// assert_eq!(backend.get(&key, 10).await.unwrap().as_deref(), Some(&b"v"[..]));
/// assert_eq!(backend.id(), "m");
/// # });
/// ```
#[macro_export]
macro_rules! forward_backend {
    (
        impl $(<$($g:ident: $bound:path),+ $(,)?>)? StorageBackend for $ty:ty {
            forward $($method:ident),+ to self.$field:tt $(after self.$hook:ident)?;
            $($item:tt)*
        }
    ) => {
        $crate::forward_backend!(@write
            [$(<$($g: $bound),+>)?] [$ty] [$($item)*] $field [$($hook)?] [$($method)+] []
        );
    };

    // Writes the forwarded methods one at a time into the last list, then the impl with
    // all of them at once: `#[async_trait]` must see every `async fn` as written.
    (@write $gen:tt $ty:tt $items:tt $field:tt $hook:tt [id $($rest:ident)*] [$($done:tt)*]) => {
        $crate::forward_backend!(@write $gen $ty $items $field $hook [$($rest)*] [$($done)*
            fn id(&self) -> &str {
                $crate::__private::StorageBackend::id(&self.$field)
            }
        ]);
    };
    (@write $gen:tt $ty:tt $items:tt $field:tt $hook:tt [name $($rest:ident)*] [$($done:tt)*]) => {
        $crate::forward_backend!(@write $gen $ty $items $field $hook [$($rest)*] [$($done)*
            fn name(&self) -> &str {
                $crate::__private::StorageBackend::name(&self.$field)
            }
        ]);
    };
    (@write $gen:tt $ty:tt $items:tt $field:tt [$($hook:ident)?] [put $($rest:ident)*]
        [$($done:tt)*]) => {
        $crate::forward_backend!(@write $gen $ty $items $field [$($hook)?] [$($rest)*] [$($done)*
            async fn put(
                &self,
                key: &$crate::__private::Key,
                data: $crate::__private::Bytes,
                mode: $crate::__private::PutMode,
            ) -> ::core::result::Result<(), $crate::__private::BackendError> {
                $(self.$hook($crate::Ops::PUT).await?;)?
                $crate::__private::StorageBackend::put(&self.$field, key, data, mode).await
            }
        ]);
    };
    (@write $gen:tt $ty:tt $items:tt $field:tt [$($hook:ident)?] [get $($rest:ident)*]
        [$($done:tt)*]) => {
        $crate::forward_backend!(@write $gen $ty $items $field [$($hook)?] [$($rest)*] [$($done)*
            async fn get(
                &self,
                key: &$crate::__private::Key,
                max_len: u64,
            ) -> ::core::result::Result<
                ::core::option::Option<$crate::__private::Bytes>,
                $crate::__private::BackendError,
            > {
                $(self.$hook($crate::Ops::GET).await?;)?
                $crate::__private::StorageBackend::get(&self.$field, key, max_len).await
            }
        ]);
    };
    (@write $gen:tt $ty:tt $items:tt $field:tt [$($hook:ident)?] [delete $($rest:ident)*]
        [$($done:tt)*]) => {
        $crate::forward_backend!(@write $gen $ty $items $field [$($hook)?] [$($rest)*] [$($done)*
            async fn delete(
                &self,
                key: &$crate::__private::Key,
            ) -> ::core::result::Result<(), $crate::__private::BackendError> {
                $(self.$hook($crate::Ops::DELETE).await?;)?
                $crate::__private::StorageBackend::delete(&self.$field, key).await
            }
        ]);
    };
    (@write $gen:tt $ty:tt $items:tt $field:tt [$($hook:ident)?] [list_page $($rest:ident)*]
        [$($done:tt)*]) => {
        $crate::forward_backend!(@write $gen $ty $items $field [$($hook)?] [$($rest)*] [$($done)*
            async fn list_page(
                &self,
                prefix: &$crate::__private::KeyPrefix,
                from: $crate::__private::ListFrom,
            ) -> ::core::result::Result<
                $crate::__private::ListPage,
                $crate::__private::BackendError,
            > {
                $(self.$hook($crate::Ops::LIST).await?;)?
                $crate::__private::StorageBackend::list_page(&self.$field, prefix, from).await
            }
        ]);
    };
    (@write $gen:tt $ty:tt $items:tt $field:tt $hook:tt [$other:ident $($rest:ident)*]
        $done:tt) => {
        ::core::compile_error!(::core::concat!(
            "forward_backend!: `", ::core::stringify!($other), "` is not a StorageBackend method"
        ));
    };
    (@write [$($gen:tt)*] [$ty:ty] [$($item:tt)*] $field:tt $hook:tt [] [$($done:tt)*]) => {
        #[$crate::__private::async_trait]
        impl $($gen)* $crate::__private::StorageBackend for $ty {
            $($done)*
            $($item)*
        }
    };
}
