document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th[data-col]').forEach(function (th) {
    th.addEventListener('click', function () {
      var now = th.getAttribute('aria-sort');
      var desc = now ? now === 'ascending' : th.dataset.first === 'desc';
      table.querySelectorAll('th[aria-sort]').forEach(function (o) {
        o.removeAttribute('aria-sort');
      });
      th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      var col = +th.dataset.col, body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[col];
        return cell ? (cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent) : '';
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === '' || y === '') return (x === '') - (y === '');
        var fx = Number(x), fy = Number(y);
        var c = isNaN(fx) || isNaN(fy) ? x.localeCompare(y) : fx - fy;
        return desc ? -c : c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
