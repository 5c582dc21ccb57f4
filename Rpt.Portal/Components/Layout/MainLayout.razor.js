// Remembers the theme the person chose, for every page and every visit (read by the server before it draws).
export function remember(mode) {
  document.cookie = `rpt-theme=${mode}; path=/; max-age=${60 * 60 * 24 * 365}; samesite=lax${location.protocol === 'https:' ? '; secure' : ''}`;
}
