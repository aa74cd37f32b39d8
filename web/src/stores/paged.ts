import { ref, type Ref } from "vue";

export interface Slice<T> {
  items: T[];
  total: number;
}

// The state every paginated list shares: filters, page, page size, and a
// loader that reads one page for them.
export function usePagedList<T, F extends object>(
  initialFilters: F,
  initialSize: number,
  load: (filters: F, limit: number, offset: number) => Promise<Slice<T>>,
) {
  const items = ref<T[]>([]) as Ref<T[]>;
  const total = ref(0);
  const page = ref(1);
  const pageSize = ref(initialSize);
  const filters = ref({ ...initialFilters }) as Ref<F>;
  const loading = ref(false);

  async function fetchPage(): Promise<void> {
    loading.value = true;
    try {
      const offset = (page.value - 1) * pageSize.value;
      const slice = await load(filters.value, pageSize.value, offset);
      items.value = slice.items;
      total.value = slice.total;
    } finally {
      loading.value = false;
    }
  }

  function setFilters(next: Partial<F>): Promise<void> {
    filters.value = { ...filters.value, ...next };
    page.value = 1;
    return fetchPage();
  }

  function setPage(next: number, size = pageSize.value): Promise<void> {
    page.value = next;
    pageSize.value = size;
    return fetchPage();
  }

  return {
    items,
    total,
    page,
    pageSize,
    filters,
    loading,
    fetchPage,
    setFilters,
    setPage,
  };
}
