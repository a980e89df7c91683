// Operator console behaviour that htmx attributes cannot express without eval (the CSP forbids
// inline script and eval): confirmations, select-all, and pausing a poll while the operator is
// selecting rows. Served as a file from 'self'.
'use strict';

document.addEventListener('submit', (e) => {
  const form = e.target;
  const msg = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (msg && !window.confirm(msg)) e.preventDefault();
}, true);

document.addEventListener('change', (e) => {
  const box = e.target;
  if (!(box instanceof HTMLInputElement) || box.id !== 'select-all') return;
  const form = box.closest('form');
  if (!form) return;
  for (const b of form.querySelectorAll('input[type=checkbox][name=serial]')) b.checked = box.checked;
});

// htmx fires htmx:beforeRequest on the polling element; cancelling it skips one poll.
document.addEventListener('htmx:beforeRequest', (e) => {
  const sel = e.target instanceof Element ? e.target.getAttribute('data-pause-when-selected') : null;
  if (sel && document.querySelector(`${sel} input[type=checkbox]:checked`)) e.preventDefault();
});
