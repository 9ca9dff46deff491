package cfapi

import (
	"net/http/httptest"
	"testing"
)

func TestPagingReadsPageAndPerPageWithinBounds(t *testing.T) {
	tests := []struct {
		name, query   string
		page, perPage int
		bad           bool
	}{
		{"no parameters give page 1 of the default size", "", 1, 20, false},
		{"both are read", "?page=3&per_page=5", 3, 5, false},
		{"page 0 is refused", "?page=0", 0, 0, true},
		{"per_page past the maximum is refused", "?per_page=1001", 0, 0, true},
		{"a word is refused", "?page=two", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, perPage, msg := Paging(httptest.NewRequest("GET", "/x"+tt.query, nil), 20, 1000)
			if (msg != "") != tt.bad || !tt.bad && (page != tt.page || perPage != tt.perPage) {
				t.Errorf("page %d per_page %d %q", page, perPage, msg)
			}
		})
	}
}

func TestCutReturnsThePageAskedFor(t *testing.T) {
	items := []int{1, 2, 3, 4, 5}
	tests := []struct {
		name          string
		page, perPage int
		want          []int
	}{
		{"the first page", 1, 2, []int{1, 2}},
		{"the last page is short", 3, 2, []int{5}},
		{"past the end is empty", 4, 2, nil},
		{"a huge page is empty, not a panic", 1 << 62, 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Cut(items, tt.page, tt.perPage)
			if len(got) != len(tt.want) || len(got) > 0 && got[0] != tt.want[0] {
				t.Errorf("%v, want %v", got, tt.want)
			}
		})
	}
}
