(function () {
  'use strict';
  var form = document.getElementById('filter');
  var table = document.getElementById('hosts');
  var tbody = table.querySelector('tbody');
  var summary = document.getElementById('summary');
  var pager = document.getElementById('pager');
  var page = Number(new URLSearchParams(location.search).get('page')) || 1;
  var updates = 0;
  var timer = null;

  function query(p) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== '') { params.set(key, value); }
    });
    var per = new URLSearchParams(location.search).get('per');
    if (per) { params.set('per', per); }
    params.set('page', String(p));
    return params.toString();
  }

  function duration(ms) {
    if (ms < 1000) { return ms + ' ms'; }
    if (ms < 60000) { return (ms / 1000).toFixed(1) + ' s'; }
    if (ms < 3600000) {
      return Math.floor(ms / 60000) + ' min ' + String(Math.floor(ms / 1000) % 60).padStart(2, '0') + ' s';
    }
    return Math.floor(ms / 3600000) + ' h ' + String(Math.floor(ms / 60000) % 60).padStart(2, '0') + ' min';
  }

  function cell(tr, text, className) {
    var td = document.createElement('td');
    if (className) { td.className = className; }
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function badge(td, cls, text) {
    var span = document.createElement('span');
    span.className = 'badge ' + cls;
    span.textContent = text;
    td.appendChild(span);
  }

  function link(parent, href, text, rel) {
    var a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    if (rel) { a.rel = rel; }
    a.addEventListener('click', function (event) {
      if (rel) { event.preventDefault(); page += rel === 'next' ? 1 : -1; update(); }
    });
    parent.appendChild(a);
  }

  function render(s) {
    summary.textContent = s.n_matched + ' of ' + s.n_hosts + ' hosts \u00b7 ' + s.n_stuck +
      ' stuck \u00b7 ' + s.n_looping + ' looping';
    var body = document.createElement('tbody');
    s.rows.forEach(function (row) {
      var tr = document.createElement('tr');
      tr.dataset.mac = row.mac;
      var name = cell(tr, '');
      link(name, '/status/host/' + row.mac, row.name);
      cell(tr, row.mac, 'wide');
      cell(tr, row.address || '', 'wide');
      cell(tr, row.install ? 'yes' : 'no', 'wide');
      var stage = cell(tr, row.detail ? row.stage + ' (' + row.detail + ')' : row.stage);
      if (row.stuck) { badge(stage, 'stuck', 'stuck'); }
      if (row.looping) { badge(stage, 'loop', 'loop?'); }
      cell(tr, row.at ? duration(Math.max(0, s.now - row.at)) + ' ago' : '-');
      body.appendChild(tr);
    });
    table.replaceChild(body, tbody);
    tbody = body;
    pager.textContent = '';
    if (s.page > 1) { link(pager, '/status?' + query(s.page - 1), '\u2190 previous', 'prev'); }
    var span = document.createElement('span');
    span.textContent = 'page ' + s.page + ' of ' + s.n_pages;
    pager.appendChild(span);
    if (s.page < s.n_pages) { link(pager, '/status?' + query(s.page + 1), 'next \u2192', 'next'); }
    updates += 1;
    table.dataset.updated = String(updates);
  }

  function update() {
    var q = query(page);
    history.replaceState(null, '', '/status?' + q);
    return fetch('/status.json?' + q, { cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.json();
      })
      .then(render)
      .catch(function (error) { summary.dataset.error = String(error); });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    page = 1;
    update();
  });
  form.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () { page = 1; update(); }, 250);
  });
  update();
  setInterval(update, 3000);
}());
